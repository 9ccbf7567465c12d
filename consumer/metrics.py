"""The optional HTTP endpoint: Prometheus metrics on /metrics, loop liveness on /healthz.

Everything is read at scrape time from the counters and gauges the pipeline keeps anyway, so
serving metrics costs the hot path nothing. The server runs in a daemon thread; /healthz answers
503 when the poll loop has not completed an iteration for `health_stall_s`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from consumer.counters import Counters, Histogram
from consumer.stats import ConsumerLag, Gauges, GcMonitor


@dataclass(frozen=True, slots=True)
class MetricSources:
    """Where the metrics are read from."""

    counters: Counters
    gauges: Callable[[], Gauges]
    lag: ConsumerLag
    gc: GcMonitor
    loop_stalled_for: Callable[[], float]


class ArchiverCollector(Collector):
    """Turns the pipeline's counters and gauges into Prometheus metric families."""

    def __init__(self, sources: MetricSources) -> None:
        self._sources = sources

    def collect(self) -> Iterable[Metric]:
        yield from self._counters(self._sources.counters)
        yield from self._gauges(self._sources.gauges())
        yield from self._lag()
        yield _histogram(
            "archiver_offset_commit_seconds", "Offset commit latency.", self._sources.counters.commit_seconds
        )
        yield _histogram(
            "archiver_file_finish_seconds",
            "Time to close, fsync and publish a file.",
            self._sources.counters.finish_seconds,
        )

    def _counters(self, counters: Counters) -> Iterable[Metric]:
        yield _labelled_counter(
            "archiver_records_consumed", "Records taken from Kafka.", ["topic"], counters.records_in_by_topic
        )
        yield _labelled_counter(
            "archiver_records_archived",
            "Rows in finished data files.",
            ["topic"],
            counters.rows_archived_by_topic,
        )
        yield _labelled_counter(
            "archiver_records_quarantined",
            "Records sent to the quarantine.",
            ["topic", "reason"],
            counters.quarantined_by_topic_reason,
        )
        yield _labelled_counter(
            "archiver_files_committed",
            "Finished files by kind and rotation reason.",
            ["kind", "reason"],
            counters.files_by_kind_reason,
        )
        yield CounterMetricFamily(
            "archiver_records_skipped", "Tombstones counted and skipped.", value=counters.skipped
        )
        yield CounterMetricFamily(
            "archiver_bytes_committed", "Bytes in finished files.", value=counters.bytes_committed
        )
        yield CounterMetricFamily(
            "archiver_flushes_on_pressure",
            "Buffers written early to stay within the memory budget.",
            value=counters.flushes_on_pressure,
        )
        pause = CounterMetricFamily(
            "archiver_gc_pause_seconds", "Time spent in Python's cyclic GC.", value=self._sources.gc.pause_s
        )
        yield pause
        collections = CounterMetricFamily("archiver_gc_collections", "Cyclic GC runs.", labels=["generation"])
        for generation, count in enumerate(self._sources.gc.collections):
            collections.add_metric([str(generation)], count)
        yield collections

    def _gauges(self, gauges: Gauges) -> Iterable[Metric]:
        pool = pa.default_memory_pool()
        values = {
            "archiver_buffered_bytes": ("Row data buffered in memory (Arrow bytes).", gauges.buffered_bytes),
            "archiver_buffered_rows": ("Rows buffered in memory.", gauges.buffered_rows),
            "archiver_upload_buffered_bytes": (
                "Parts of S3 objects held in memory, being filled or uploaded.",
                gauges.upload_bytes,
            ),
            "archiver_open_files": ("In-progress files.", gauges.open_files),
            "archiver_assigned_partitions": ("Partitions owned by this member.", gauges.partitions),
            "archiver_arrow_pool_bytes": (
                "Bytes allocated from the Arrow memory pool.",
                pool.bytes_allocated(),
            ),
            "archiver_arrow_pool_peak_bytes": ("Peak of the Arrow memory pool.", pool.max_memory() or 0),
            "archiver_oldest_unfinished_record_age_seconds": (
                "Age of the oldest record not yet in a finished file.",
                gauges.oldest_unfinished_s,
            ),
            "archiver_loop_stalled_seconds": (
                "Seconds since the poll loop last completed.",
                self._sources.loop_stalled_for(),
            ),
        }
        for name, (documentation, value) in values.items():
            yield GaugeMetricFamily(name, documentation, value=value)

    def _lag(self) -> Iterable[Metric]:
        lag = GaugeMetricFamily(
            "archiver_consumer_lag", "High watermark minus committed offset.", labels=["topic", "partition"]
        )
        for tp, value in sorted(self._sources.lag.latest.items()):
            lag.add_metric([tp.topic, str(tp.partition)], value)
        yield lag


def _labelled_counter(
    name: str,
    documentation: str,
    labels: list[str],
    values: Mapping[str, int] | Mapping[tuple[str, str], int],
) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values.items()):
        label_values: list[str] = [key] if isinstance(key, str) else list(key)
        family.add_metric(label_values, value)
    return family


def _histogram(name: str, documentation: str, histogram: Histogram) -> Metric:
    return HistogramMetricFamily(
        name, documentation, buckets=histogram.cumulative(), sum_value=histogram.total
    )


class MetricsEndpoint:
    """A small HTTP server in a daemon thread: /metrics and /healthz."""

    def __init__(self, host: str, port: int, sources: MetricSources, stall_limit_s: float) -> None:
        registry = CollectorRegistry()
        registry.register(ArchiverCollector(sources))
        ProcessCollector(registry=registry)
        handler = _handler(registry, lambda: sources.loop_stalled_for() < stall_limit_s)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)
        self._log = structlog.get_logger(component="metrics")

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        self._log.info("metrics_listening", port=self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(registry: CollectorRegistry, healthy: Callable[[], bool]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path == "/healthz":
                alive = healthy()
                self._answer(
                    200 if alive else 503, "text/plain", b"ok\n" if alive else b"poll loop stalled\n"
                )
            else:
                self._answer(404, "text/plain", b"not found\n")

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes are not logged: one line per request would drown the real events."""

    return Handler
