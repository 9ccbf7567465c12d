"""Counters and latency histograms: what the stats event and the metrics endpoint read."""

from __future__ import annotations

import pytest

from consumer.counters import Counters, Histogram
from consumer.naming import FileKind
from consumer.records import Reason, Rejected, TopicPartition
from consumer.rotation import RotationReason
from consumer.segment import FileReport, SegmentReport


def _rejected(reason: Reason) -> Rejected:
    return Rejected(0, None, None, b"x", reason, "detail")


def _file(kind: FileKind, rows: int, finish_s: float) -> FileReport:
    return FileReport("p", kind, rows, 100, 400, 1, finish_s)


class TestHistogram:
    def test_buckets_are_cumulative_with_infinity(self) -> None:
        """Observations land in the first bucket whose bound is not below them; +Inf counts all."""
        histogram = Histogram(bounds=(0.1, 1.0), counts=[0, 0, 0])
        for seconds in (0.05, 0.1, 0.5, 3.0):
            histogram.observe(seconds)
        assert histogram.cumulative() == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]
        assert histogram.count == 4
        assert histogram.total == pytest.approx(3.65)


class TestCounters:
    def test_poll_counts_per_topic_and_reason(self) -> None:
        """A poll adds its records, its rejects by reason, and its skipped tombstones."""
        counters = Counters()
        counters.record_poll("a", 10, [_rejected(Reason.INVALID_JSON), _rejected(Reason.OVERSIZE)], 1)
        counters.record_poll("b", 5, [_rejected(Reason.INVALID_JSON)], 0)
        assert (counters.records_in, counters.quarantined, counters.skipped) == (15, 3, 1)
        assert counters.records_in_by_topic == {"a": 10, "b": 5}
        assert counters.quarantined_by_topic_reason == {
            ("a", "invalid_json"): 1,
            ("a", "oversize"): 1,
            ("b", "invalid_json"): 1,
        }

    def test_finished_segment_counts_files_rows_and_latency(self) -> None:
        """Data rows count as archived; every file counts by kind and reason and times its finish."""
        counters = Counters()
        files = [_file(FileKind.QUARANTINE, 2, 0.002), _file(FileKind.DATA, 30, 0.2)]
        counters.record(SegmentReport(TopicPartition("a", 0), 0, 31, RotationReason.SIZE, 5.0, files))
        assert (counters.files_committed, counters.rows_archived, counters.bytes_committed) == (2, 30, 200)
        assert counters.rows_archived_by_topic == {"a": 30}
        assert counters.files_by_kind_reason == {("quarantine", "size"): 1, ("data", "size"): 1}
        assert counters.finish_seconds.count == 2
