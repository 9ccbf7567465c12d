"""Memory and GC measurements, consumer lag, and the periodic `stats` event.

Memory is reported two ways: RSS of the process (psutil) and the Arrow memory pool's current and
peak bytes. GC pauses are timed through gc.callbacks, so the cost of Python's cyclic collector
shows up next to the throughput it takes away.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil
import pyarrow as pa
import structlog

from consumer.clock import Stopwatch
from consumer.counters import Counters
from consumer.records import TopicPartition


class GcMonitor:
    """Counts collections per generation and the time spent in them."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.pause_s = 0.0
        self._started: Stopwatch | None = None

    def install(self) -> None:
        gc.callbacks.append(self._on_gc)

    def uninstall(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: Mapping[str, Any]) -> None:
        if phase == "start":
            self._started = Stopwatch()
        elif self._started is not None:
            self.pause_s += self._started.seconds()
            self.collections[info["generation"]] += 1
            self._started = None


class ConsumerLag:
    """The latest per-partition lag from the Kafka client's statistics, for partitions still owned."""

    def __init__(self, owned: Callable[[TopicPartition], bool]) -> None:
        self._owned = owned
        self._reported: dict[TopicPartition, int] = {}

    def update(self, lag: dict[TopicPartition, int]) -> None:
        self._reported = lag

    @property
    def latest(self) -> dict[TopicPartition, int]:
        return {tp: value for tp, value in self._reported.items() if self._owned(tp)}


@dataclass(slots=True)
class Gauges:
    """Point-in-time values supplied by the parts that own them."""

    buffered_rows: int
    buffered_bytes: int
    open_files: int
    partitions: int
    tracked_topics: int
    oldest_unfinished_s: float
    upload_bytes: int = 0  # parts of S3 objects being filled or uploaded (0 for a local archive)


@dataclass(slots=True)
class _Previous:
    at: float
    records_in: int = 0
    rows_archived: int = 0
    gc_collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    gc_pause_s: float = 0.0


class StatsReporter:
    """Emits one `stats` event every interval: memory, buffers, rates, GC and consumer lag."""

    def __init__(
        self,
        interval_s: float,
        counters: Counters,
        gc_monitor: GcMonitor,
        gauges: Callable[[], Gauges],
        lag: ConsumerLag,
        now: float,
    ) -> None:
        self._interval_s = interval_s
        self.counters = counters
        self._gc = gc_monitor
        self._gauges = gauges
        self._lag = lag
        self._previous = _Previous(now)
        self._process = psutil.Process()
        self._log = structlog.get_logger(component="stats")
        self.summary = "starting"

    def iteration_done(self, now: float) -> None:
        if now - self._previous.at >= self._interval_s:
            self.emit(now)

    def emit(self, now: float) -> None:
        previous, counters, pool = self._previous, self.counters, pa.default_memory_pool()
        elapsed = max(now - previous.at, 1e-9)
        gauges = self._gauges()
        records_per_s = (counters.records_in - previous.records_in) / elapsed
        lag = self._lag.latest
        lag_total = sum(lag.values())
        self._log.info(
            "stats",
            rss_bytes=self._process.memory_info().rss,
            arrow_bytes=pool.bytes_allocated(),
            arrow_peak_bytes=pool.max_memory(),
            arrow_backend=pool.backend_name,
            buffered_rows=gauges.buffered_rows,
            buffered_bytes=gauges.buffered_bytes,
            upload_bytes=gauges.upload_bytes,
            open_files=gauges.open_files,
            partitions=gauges.partitions,
            tracked_topics=gauges.tracked_topics,
            records_in=counters.records_in,
            rows_archived=counters.rows_archived,
            quarantined=counters.quarantined,
            skipped=counters.skipped,
            files_committed=counters.files_committed,
            flushes_on_pressure=counters.flushes_on_pressure,
            records_in_per_s=round(records_per_s, 1),
            rows_archived_per_s=round((counters.rows_archived - previous.rows_archived) / elapsed, 1),
            gc_collections=[
                now_count - before
                for now_count, before in zip(self._gc.collections, previous.gc_collections, strict=True)
            ],
            gc_pause_ms=round((self._gc.pause_s - previous.gc_pause_s) * 1000, 2),
            consumer_lag={str(tp): value for tp, value in sorted(lag.items())},
            consumer_lag_total=lag_total,
        )
        self.summary = (
            f"{gauges.partitions} partitions, {records_per_s:,.0f} records/s, lag {lag_total:,}, "
            f"{gauges.buffered_bytes / 2**20:,.1f} MiB buffered, {counters.files_committed:,} files"
        )
        self._previous = _Previous(
            now, counters.records_in, counters.rows_archived, list(self._gc.collections), self._gc.pause_s
        )
