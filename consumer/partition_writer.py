"""Per-partition state: the open segment, its rotation, and the durable offset it hands back.

Records are appended in offset order. `next_offset` is the offset the partition expects next;
records below it (a client replaying after a seek or rebalance) were already taken and are
dropped, so a record can never enter two segments. A finished segment's report carries the only
offset that may be committed: the one after its last record.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable

import pyarrow as pa
import structlog

from consumer.convert import Conversion
from consumer.memory_pool import release_unused
from consumer.naming import FileKind
from consumer.records import DecodedBatch, RawBatch, TopicPartition
from consumer.rotation import RotationPolicy, RotationReason
from consumer.schema import FileSchema, TopicSchema
from consumer.segment import Segment, SegmentReport, SinkSettings


class PartitionWriter:
    """Owns one assigned partition's segment from first record to finished files."""

    def __init__(
        self,
        tp: TopicPartition,
        topic: TopicSchema,
        metadata_fields: Iterable[pa.Field],
        settings: SinkSettings,
        policy: RotationPolicy,
        on_finished: Callable[[SegmentReport], None],
    ) -> None:
        self.tp = tp
        self._on_finished = on_finished
        self.topic = topic
        self._metadata_fields = list(metadata_fields)
        self._settings = settings
        self._policy = policy
        self._segment: Segment | None = None
        self._compression_ratio = 1.0
        self.next_offset: int | None = None
        self._end_offset: int | None = None  # where the client last reached the partition's end
        self._log = structlog.get_logger(component="partition_writer").bind(
            topic=tp.topic, partition=tp.partition
        )

    @property
    def buffered_bytes(self) -> int:
        return self._segment.buffered_bytes if self._segment else 0

    @property
    def buffered_rows(self) -> int:
        return self._segment.buffered_rows if self._segment else 0

    @property
    def open_files(self) -> int:
        return self._segment.open_files if self._segment else 0

    @property
    def opened_at(self) -> float | None:
        """When the open segment took its first record (None without an open segment)."""
        return self._segment.opened_at if self._segment else None

    def unseen(self, raw: RawBatch) -> RawBatch | None:
        """The part of a poll this partition has not taken yet, or None if it has taken all of it."""
        if self.next_offset is None or raw.offsets[0] >= self.next_offset:
            return raw
        start = bisect_left(raw.offsets, self.next_offset)
        if start == len(raw.offsets):
            return None
        return raw.starting_at(start)

    def file_schema(self, first_offset: int, now: float) -> FileSchema:
        """The schema of the file the next rows go to, opening a segment at first_offset if none is open."""
        if self._segment is None:
            schema = self.topic.new_file_schema(self._metadata_fields)
            self._segment = Segment(self.tp, first_offset, self.topic, schema, self._settings, now)
        return self._segment.schema

    def append(self, decoded: DecodedBatch, conversion: Conversion, now: float, wall_now: float) -> None:
        if self._segment is None:
            self.file_schema(decoded.first_offset, now)
        assert self._segment is not None
        self._segment.append(decoded, conversion, now, wall_now)
        self.next_offset = decoded.last_offset + 1

    def flush(self) -> None:
        """Write buffered rows out as row groups (to relieve memory pressure)."""
        if self._segment is not None:
            self._segment.flush()
            self._learn_ratio(self._segment)

    def reached_end(self, end_offset: int) -> None:
        """The client read the partition to its end: `end_offset` is the offset after its last record."""
        self._end_offset = end_offset

    @property
    def caught_up(self) -> bool:
        """Whether every record the partition held when the client last reached its end was taken."""
        end, taken_to = self._end_offset, self.next_offset
        return end is not None and taken_to is not None and end >= taken_to

    def rotation(self, now: float) -> tuple[RotationReason | None, float]:
        """Why the open file is due now (None: it is not), and when the clock alone makes it due
        (infinity with no file open), from one look at its progress."""
        if self._segment is None:
            return None, math.inf
        progress = self._segment.progress(self._compression_ratio, self.caught_up)
        return self._policy.reason(progress, now), self._policy.clock_due_at(progress)

    def finish(self, reason: RotationReason, now: float) -> SegmentReport | None:
        """Finish the open segment (if any): its files become durable and visible."""
        segment, self._segment = self._segment, None
        if segment is None:
            return None
        report = segment.finish(reason, now)
        release_unused()
        for file in report.files:
            if file.kind is FileKind.DATA and file.arrow_bytes:
                self._compression_ratio = file.bytes / file.arrow_bytes
            self._log.info(
                "file_committed",
                path=file.path,
                kind=file.kind.value,
                rows=file.rows,
                bytes=file.bytes,
                row_groups=file.row_groups,
                first_offset=report.first_offset,
                last_offset=report.last_offset,
                reason=reason.value,
                age_s=round(report.age_s, 3),
                finish_ms=round(file.finish_s * 1000, 1),
            )
        self._on_finished(report)
        return report

    def abort(self) -> None:
        """Discard the open segment; its offsets will be consumed again by whoever owns the partition."""
        segment, self._segment = self._segment, None
        if segment is not None:
            segment.abort()
            self._log.info("segment_aborted", first_offset=segment.stats.first_offset)

    def _learn_ratio(self, segment: Segment) -> None:
        ratio = segment.compression_ratio()
        if ratio is not None:
            self._compression_ratio = ratio
