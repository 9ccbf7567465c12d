"""One iteration: poll -> route by partition -> ingest -> rotate -> commit durable offsets.

Time is read once per iteration. Rotation by age and idleness is checked for every partition on
every iteration, so a quiet partition finishes its file even when nothing arrives, and a poll waits
for records no longer than until the next file comes due by the clock: timers fire on time, not up
to a poll's timeout late. Files opened together come due together by the clock, so finishing them
is sliced: once an iteration has spent CLOCK_FINISH_SLICE_S finishing such files, the others wait
for the next iteration, one poll (that does not wait) later. Offsets are committed only from
finished segments, once per iteration for all partitions together.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from consumer.assignment import Assignment
from consumer.clock import Clock
from consumer.ingest import Ingest
from consumer.offsets import OffsetCommitter
from consumer.partition_writer import PartitionWriter
from consumer.records import Poll, TopicPartition

# Thousands of partitions whose files all come due by age at once, each finish waiting for a disk
# or an object store, would otherwise hold one iteration for minutes: past the group's
# max.poll.interval.ms and the watchdog, which only completed iterations feed. Files due by size
# or row groups are never held back, so they stay within their caps.
CLOCK_FINISH_SLICE_S = 1.0


class IterationObserver(Protocol):
    """Told when an iteration completed (stats, liveness)."""

    def iteration_done(self, now: float) -> None: ...


class RecordSource(Protocol):
    """Where records come from and where durable offsets go (the Kafka consumer, in production)."""

    def poll(self, max_wait_s: float) -> Poll:
        """Records, after waiting for them at most `max_wait_s` (and at most the source's own timeout)."""
        ...

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None: ...


class ArchiveLoop:
    """Drives the pipeline, one poll at a time."""

    def __init__(
        self,
        source: RecordSource,
        assignment: Assignment,
        ingest: Ingest,
        committer: OffsetCommitter,
        clock: Clock,
        observers: Sequence[IterationObserver],
    ) -> None:
        self._source = source
        self._assignment = assignment
        self._ingest = ingest
        self._committer = committer
        self._clock = clock
        self._observers = list(observers)
        self._clock_finish_s = 0.0  # spent in this iteration finishing files due by the clock
        self._clock_due_at = math.inf  # when the next open file comes due by the clock

    def run(self, stop: Callable[[], bool]) -> None:
        while not stop():
            self.iterate()

    def iterate(self) -> None:
        poll = self._source.poll(max(0.0, self._clock_due_at - self._clock.monotonic()))
        now, wall_now = self._clock.monotonic(), self._clock.wall()
        durable = self._assignment.take_pending()
        self._clock_finish_s = 0.0
        for raw in poll.batches:
            writer = self._assignment.writer(raw.tp)
            if writer is None:  # records of a partition that just moved away are not ours
                continue
            self._ingest.ingest(writer, raw, self._assignment.writers, now, wall_now)
            self._rotate_if_due(writer, now, durable)
        for tp, end_offset in poll.ends.items():
            if (writer := self._assignment.writer(tp)) is not None:
                writer.reached_end(end_offset)
        self._clock_due_at = math.inf
        for writer in self._assignment.writers():
            self._clock_due_at = min(self._clock_due_at, self._rotate_if_due(writer, now, durable))
        self._committer.commit(durable)
        for observer in self._observers:
            observer.iteration_done(now)

    def _rotate_if_due(
        self, writer: PartitionWriter, now: float, durable: dict[TopicPartition, int]
    ) -> float:
        """Finish the writer's file if it is due; return when its open file comes due by the clock
        (infinity once finished, or with none open)."""
        reason, clock_due_at = writer.rotation(now)
        if reason is None or (reason.by_clock and self._clock_finish_s >= CLOCK_FINISH_SLICE_S):
            return clock_due_at
        started = self._clock.monotonic()
        report = writer.finish(reason, now)
        if reason.by_clock:
            self._clock_finish_s += self._clock.monotonic() - started
        if report is not None:
            durable[report.tp] = report.next_offset
        return math.inf
