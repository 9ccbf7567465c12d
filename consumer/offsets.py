"""Offset commits: only offsets handed back by finished segments, and only ever upwards."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog

from consumer.clock import Stopwatch
from consumer.counters import Histogram
from consumer.errors import CommitRefusedError
from consumer.records import TopicPartition


class OffsetCommitter:
    """Commits next-offsets for owned partitions; never moves a partition's committed offset back."""

    def __init__(self, commit: Callable[[Mapping[TopicPartition, int]], None], latency: Histogram) -> None:
        self._commit = commit
        self._latency = latency
        self._committed: dict[TopicPartition, int] = {}
        self._log = structlog.get_logger(component="offsets")

    def track(self, tp: TopicPartition, committed: int | None) -> None:
        """Start following a newly assigned partition whose group offset is `committed`."""
        self._committed[tp] = committed if committed is not None else -1

    def forget(self, tp: TopicPartition) -> None:
        self._committed.pop(tp, None)

    def committed(self, tp: TopicPartition) -> int | None:
        offset = self._committed.get(tp, -1)
        return offset if offset >= 0 else None

    def commit(self, offsets: Mapping[TopicPartition, int]) -> bool:
        """Commit the offsets that move forward; return False if Kafka refused them."""
        due = {tp: offset for tp, offset in offsets.items() if offset > self._committed.get(tp, offset)}
        if not due:
            return True
        stopwatch = Stopwatch()
        try:
            self._commit(due)
        except CommitRefusedError as exc:
            self._log.warning("offsets_commit_failed", error=str(exc), partitions=sorted(map(str, due)))
            return False
        self._latency.observe(stopwatch.seconds())
        self._committed.update(due)
        self._log.info("offsets_committed", offsets={str(tp): offset for tp, offset in sorted(due.items())})
        return True
