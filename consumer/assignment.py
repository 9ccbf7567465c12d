"""The partitions this member owns, each with its writer; the rebalance listener.

On assignment, each partition resumes after its archive (recovery) or at the group's committed
offset, whichever is further. On revoke, the partitions' open segments are finished and their
offsets committed before the partitions move on. On loss, the open segments are discarded
without a commit: another member may already own those partitions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence

import structlog

from consumer.clock import Clock
from consumer.errors import ArchiverError
from consumer.offsets import OffsetCommitter
from consumer.partition_writer import PartitionWriter
from consumer.records import TopicPartition
from consumer.recovery import Recovery
from consumer.rotation import RotationReason
from consumer.schema import TopicSchema
from consumer.topic_schemas import TopicSchemas

WriterFactory = Callable[[TopicPartition, TopicSchema], PartitionWriter]


class Assignment:
    """Owned partitions and their writers; reacts to rebalances."""

    def __init__(
        self,
        recovery: Recovery,
        schemas: TopicSchemas,
        make_writer: WriterFactory,
        committer: OffsetCommitter,
        clock: Clock,
    ) -> None:
        self._recovery = recovery
        self._schemas = schemas
        self._make_writer = make_writer
        self._committer = committer
        self._clock = clock
        self._writers: dict[TopicPartition, PartitionWriter] = {}
        self._pending: dict[TopicPartition, int] = {}
        self._aborting = False
        self.joined = False  # set by the first assignment, even an empty one
        self._log = structlog.get_logger(component="assignment")

    def writer(self, tp: TopicPartition) -> PartitionWriter | None:
        return self._writers.get(tp)

    def writers(self) -> Iterator[PartitionWriter]:
        return iter(list(self._writers.values()))

    def __len__(self) -> int:
        return len(self._writers)

    # --- rebalance listener ---------------------------------------------------------------------

    def assigned(self, committed: Mapping[TopicPartition, int | None]) -> dict[TopicPartition, int | None]:
        self.joined = True
        started = self._clock.monotonic()
        by_topic: dict[str, list[int]] = defaultdict(list)
        for tp in committed:
            by_topic[tp.topic].append(tp.partition)
        starts: dict[TopicPartition, int | None] = {}
        for topic, partitions in by_topic.items():
            for partition, archive in self._recovery.recover(topic, partitions).items():
                tp = TopicPartition(topic, partition)
                schema = self._schemas.acquire(topic)
                schema.seed(archive.schema)
                starts[tp] = self._adopt(tp, schema, committed[tp], archive.resume_offset)
        self._log.info(
            "partitions_assigned",
            partitions=sorted(map(str, starts)),
            starts={str(k): v for k, v in starts.items()},
            recovery_s=round(self._clock.monotonic() - started, 3),  # grows with the topics' file counts
        )
        return starts

    def _adopt(
        self, tp: TopicPartition, schema: TopicSchema, committed: int | None, archived: int | None
    ) -> int | None:
        start = max((offset for offset in (committed, archived) if offset is not None), default=None)
        writer = self._make_writer(tp, schema)
        writer.next_offset = start
        self._writers[tp] = writer
        self._committer.track(tp, committed)
        if archived is not None and (committed is None or archived > committed):
            self._pending[tp] = archived  # the archive is ahead of the group: record it
        return start

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        if self._aborting:
            return
        durable = self.finish([tp for tp in partitions if tp in self._writers], RotationReason.REVOKE)
        self._committer.commit(durable)
        self._release(partitions)
        self._log.info("partitions_revoked", partitions=sorted(map(str, partitions)))

    def lost(self, partitions: Sequence[TopicPartition]) -> None:
        for tp in partitions:
            writer = self._writers.get(tp)
            if writer is not None:
                writer.abort()
        self._release(partitions)
        self._log.warning("partitions_lost", partitions=sorted(map(str, partitions)))

    # --- lifecycle ---------------------------------------------------------------------------------

    def finish(
        self, partitions: Sequence[TopicPartition], reason: RotationReason
    ) -> dict[TopicPartition, int]:
        """Finish these partitions' segments; return the offsets that are now durable (plus pending ones)."""
        durable: dict[TopicPartition, int] = {}
        now = self._clock.monotonic()
        for tp in partitions:
            report = self._writers[tp].finish(reason, now)
            if report is not None:
                durable[tp] = report.next_offset
            elif tp in self._pending:
                durable[tp] = self._pending[tp]
            self._pending.pop(tp, None)
        return durable

    def finish_all(self, reason: RotationReason) -> dict[TopicPartition, int]:
        return self.finish(list(self._writers), reason)

    def take_pending(self) -> dict[TopicPartition, int]:
        """Offsets that became durable outside a segment finish (an archive ahead of the group)."""
        pending, self._pending = self._pending, {}
        return pending

    def abort_all(self) -> None:
        """Discard every open segment; later revoke callbacks (from closing the client) do nothing.

        Runs on the way out after a failure: one file that cannot be discarded is logged and the
        others are still discarded (a leftover hidden file is deleted by the next owner).
        """
        self._aborting = True
        for tp, writer in self._writers.items():
            try:
                writer.abort()
            except ArchiverError as exc:
                self._log.warning("abort_failed", partition=str(tp), error=str(exc))

    def _release(self, partitions: Sequence[TopicPartition]) -> None:
        for tp in partitions:
            if self._writers.pop(tp, None) is not None:
                self._committer.forget(tp)
                self._pending.pop(tp, None)
                self._schemas.release(tp.topic)
