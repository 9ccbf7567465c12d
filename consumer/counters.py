"""What happened since start-up: totals per topic and reason, and latency histograms.

The one place events are counted; the `stats` log event and the Prometheus endpoint both read
from here. Label sets are bounded: topics being archived, rotation reasons, quarantine reasons.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

from consumer.naming import FileKind
from consumer.records import Rejected
from consumer.segment import SegmentReport

LATENCY_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class Histogram:
    """Cumulative-bucket latency histogram in seconds, as Prometheus exposes it."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS_S
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, observations at or below it) including +Inf."""
        running, buckets = 0, []
        for bound, count in zip([*map(str, self.bounds), "+Inf"], self.counts, strict=True):
            running += count
            buckets.append((bound, running))
        return buckets


@dataclass(slots=True)
class Counters:
    """Monotonic totals since start-up."""

    records_in: int = 0
    rows_archived: int = 0
    quarantined: int = 0
    skipped: int = 0
    files_committed: int = 0
    bytes_committed: int = 0
    flushes_on_pressure: int = 0
    records_in_by_topic: Counter[str] = field(default_factory=Counter)
    rows_archived_by_topic: Counter[str] = field(default_factory=Counter)
    quarantined_by_topic_reason: Counter[tuple[str, str]] = field(default_factory=Counter)
    files_by_kind_reason: Counter[tuple[str, str]] = field(default_factory=Counter)
    commit_seconds: Histogram = field(default_factory=Histogram)
    finish_seconds: Histogram = field(default_factory=Histogram)

    def record_poll(self, topic: str, records: int, rejected: list[Rejected], skipped: int) -> None:
        """Count one partition's poll."""
        self.records_in += records
        self.records_in_by_topic[topic] += records
        self.quarantined += len(rejected)
        for entry in rejected:
            self.quarantined_by_topic_reason[topic, entry.reason.value] += 1
        self.skipped += skipped

    def record(self, report: SegmentReport) -> None:
        """Count a finished segment's files."""
        self.files_committed += len(report.files)
        for file in report.files:
            self.bytes_committed += file.bytes
            self.files_by_kind_reason[file.kind.value, report.reason.value] += 1
            self.finish_seconds.observe(file.finish_s)
            if file.kind is FileKind.DATA:
                self.rows_archived += file.rows
                self.rows_archived_by_topic[report.tp.topic] += file.rows
