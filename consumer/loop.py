"""One iteration: poll -> route by partition -> ingest -> rotate -> commit durable offsets.

Time is read once per iteration. Rotation by age and idleness is checked for every partition on
every iteration, so a quiet partition finishes its file even when nothing arrives. Offsets are
committed only from finished segments, once per iteration for all partitions together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from consumer.assignment import Assignment
from consumer.clock import Clock
from consumer.ingest import Ingest
from consumer.offsets import OffsetCommitter
from consumer.partition_writer import PartitionWriter
from consumer.records import Poll, TopicPartition


class IterationObserver(Protocol):
    """Told when an iteration completed (stats, liveness)."""

    def iteration_done(self, now: float) -> None: ...


class RecordSource(Protocol):
    """Where records come from and where durable offsets go (the Kafka consumer, in production)."""

    def poll(self) -> Poll: ...

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

    def run(self, stop: Callable[[], bool]) -> None:
        while not stop():
            self.iterate()

    def iterate(self) -> None:
        poll = self._source.poll()
        now, wall_now = self._clock.monotonic(), self._clock.wall()
        durable = self._assignment.take_pending()
        for raw in poll.batches:
            writer = self._assignment.writer(raw.tp)
            if writer is None:  # records of a partition that just moved away are not ours
                continue
            self._ingest.ingest(writer, raw, self._assignment.writers, now, wall_now)
            self._rotate_if_due(writer, now, durable)
        for tp, end_offset in poll.ends.items():
            if (writer := self._assignment.writer(tp)) is not None:
                writer.reached_end(end_offset)
        for writer in self._assignment.writers():
            self._rotate_if_due(writer, now, durable)
        self._committer.commit(durable)
        for observer in self._observers:
            observer.iteration_done(now)

    @staticmethod
    def _rotate_if_due(writer: PartitionWriter, now: float, durable: dict[TopicPartition, int]) -> None:
        reason = writer.rotation_due(now)
        if reason is not None:
            report = writer.finish(reason, now)
            if report is not None:
                durable[report.tp] = report.next_offset
