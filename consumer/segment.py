"""A segment: one run of a partition's offsets and the files it becomes.

Every record of the run ends in exactly one place: a row of the data file, a row of the
quarantine file (rejected records), or the skipped count (tombstones). Both files are named by
the segment's first offset and carry the segment's offset range and counts in their footers. At
finish the quarantine file is published first and the data file last, so a data file on disk
always means its whole segment is durable (recovery relies on this).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import cast

import orjson
import pyarrow as pa

from consumer import __version__
from consumer.buffer import BufferTally, RowGroupBuffer
from consumer.clock import Stopwatch
from consumer.column_registry import ColumnRegistry
from consumer.conform import conform
from consumer.convert import Conversion
from consumer.dead_letters import DeadLetters
from consumer.naming import DayRule, FileKind, SegmentFileName
from consumer.parquet_file import ParquetFile, WriterOptions
from consumer.quarantine import QUARANTINE_SCHEMA, quarantine_batch
from consumer.records import DecodedBatch, Rejected, TopicPartition
from consumer.rotation import FileProgress, RotationReason
from consumer.schema import FileSchema, TopicSchema
from consumer.storage import ArchiveStorage
from consumer.write_queue import WriteQueue

METADATA_PREFIX = "archiver."


@dataclass(frozen=True, slots=True)
class SinkSettings:
    """What every output file of every segment shares."""

    storage: ArchiveStorage
    options: WriterOptions
    row_group_max_bytes: int
    row_group_max_rows: int
    days: DayRule
    writes: WriteQueue
    registry: ColumnRegistry
    buffered: BufferTally  # every sink's buffer adds to it: the memory budget's total
    # Where copies of rejected records go, if anywhere: a segment that rejected records publishes
    # its files only once every copy is acknowledged.
    dead_letters: DeadLetters | None = None


@dataclass(frozen=True, slots=True)
class FileReport:
    """A file that was just finished."""

    path: str
    kind: FileKind
    rows: int
    bytes: int
    arrow_bytes: int
    row_groups: int
    finish_s: float


@dataclass(frozen=True, slots=True)
class SegmentReport:
    """A finished segment: where to resume, and what was written."""

    tp: TopicPartition
    first_offset: int
    last_offset: int
    reason: RotationReason
    age_s: float
    files: list[FileReport]

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1


def kept_rows(decoded: DecodedBatch, conversion: Conversion) -> Sequence[int]:
    """Indices of the decoded rows that conversion kept (those in its batch), in order."""
    if not conversion.rejected:
        return range(len(decoded.rows))
    dropped = {entry.offset for entry in conversion.rejected}
    return [index for index, offset in enumerate(decoded.offsets) if offset not in dropped]


def rejected_in_order(decoded: DecodedBatch, conversion: Conversion) -> list[Rejected]:
    """Every record of the poll bound for the quarantine, in offset order."""
    if not conversion.rejected:
        return decoded.rejected
    return sorted([*decoded.rejected, *conversion.rejected], key=lambda entry: entry.offset)


@dataclass(slots=True)
class TimeRange:
    """The earliest and latest Kafka timestamps (ms) of a file's records."""

    low: int | None = None
    high: int | None = None

    def extend(self, timestamps: Sequence[int | None]) -> None:
        if not timestamps:
            return
        stamps = cast("Sequence[int]", timestamps)  # the common case; a None makes min() raise
        try:
            low, high = min(stamps), max(stamps)
        except TypeError:  # some records have no timestamp
            known = [stamp for stamp in timestamps if stamp is not None]
            if not known:
                return
            low, high = min(known), max(known)
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)


@dataclass(slots=True)
class SegmentStats:
    """The offsets and counts of a segment, recorded in its files' footers."""

    first_offset: int
    last_offset: int = -1
    rows: int = 0
    quarantined: int = 0
    skipped: int = 0
    data_time: TimeRange = field(default_factory=TimeRange)
    quarantine_time: TimeRange = field(default_factory=TimeRange)

    def record(self, decoded: DecodedBatch, conversion: Conversion) -> None:
        kept, rejected = kept_rows(decoded, conversion), rejected_in_order(decoded, conversion)
        self.last_offset = max(self.last_offset, decoded.last_offset)
        self.rows += len(kept)
        self.quarantined += len(rejected)
        self.skipped += decoded.skipped
        timestamps = decoded.timestamps_ms
        self.data_time.extend(timestamps if len(kept) == len(timestamps) else [timestamps[i] for i in kept])
        self.quarantine_time.extend([entry.timestamp_ms for entry in rejected])

    def metadata(self, tp: TopicPartition, kind: FileKind, reason: RotationReason) -> dict[str, str]:
        times = self.data_time if kind is FileKind.DATA else self.quarantine_time
        values: dict[str, object] = {
            "version": __version__,
            "kind": kind.value,
            "topic": tp.topic,
            "partition": tp.partition,
            "first_offset": self.first_offset,
            "last_offset": self.last_offset,
            "records": self.rows if kind is FileKind.DATA else self.quarantined,
            "data_records": self.rows,
            "quarantined": self.quarantined,
            "skipped": self.skipped,
            "min_timestamp_ms": times.low,
            "max_timestamp_ms": times.high,
            "rotation_reason": reason.value,
        }
        return {
            f"{METADATA_PREFIX}{key}": "" if value is None else str(value) for key, value in values.items()
        }


class TableSink:
    """One output file of a segment: its row-group buffer, and the file once a row group is written."""

    def __init__(self, settings: SinkSettings, kind: FileKind) -> None:
        self._settings = settings
        self.kind = kind
        self.buffer = RowGroupBuffer(settings.buffered)
        self.file: ParquetFile | None = None
        self.day: date | None = None
        self.arrow_bytes_written = 0

    @property
    def full(self) -> bool:
        settings = self._settings
        return (
            self.buffer.nbytes >= settings.row_group_max_bytes
            or self.buffer.rows >= settings.row_group_max_rows
        )

    def write(
        self,
        name: SegmentFileName,
        schema: pa.Schema,
        fit: Callable[[pa.RecordBatch, pa.Schema], pa.RecordBatch],
    ) -> None:
        """Write the buffered rows as one row group, creating the file first if needed."""
        if not self.buffer:
            return
        if self.file is None:
            pending = self._settings.storage.create(name)
            self.file = ParquetFile(
                pending,
                schema,
                self._settings.options,
                self._settings.storage.describe(name.path),
                self._settings.writes,
            )
        self.arrow_bytes_written += self.buffer.nbytes
        self.file.write_row_group(self.buffer.take(self.file.schema, fit))

    def commit(self, name: SegmentFileName, metadata: dict[str, str]) -> FileReport | None:
        if self.file is None:
            return None
        stopwatch = Stopwatch()
        size = self.file.commit(metadata)
        file, self.file = self.file, None
        return FileReport(
            name.path,
            self.kind,
            file.rows,
            size,
            self.arrow_bytes_written,
            file.row_groups,
            stopwatch.seconds(),
        )

    def abort(self) -> None:
        self.buffer.clear()
        if self.file is not None:
            self.file.abort()
            self.file = None


def _same(batch: pa.RecordBatch, _schema: pa.Schema) -> pa.RecordBatch:
    return batch


class Segment:
    """The open segment of one partition."""

    def __init__(
        self,
        tp: TopicPartition,
        first_offset: int,
        topic: TopicSchema,
        schema: FileSchema,
        settings: SinkSettings,
        opened_at: float,
    ) -> None:
        self.tp = tp
        self.topic = topic
        self.schema = schema
        self.stats = SegmentStats(first_offset)
        self._settings = settings
        self._data = TableSink(settings, FileKind.DATA)
        self._quarantine = TableSink(settings, FileKind.QUARANTINE)
        self.opened_at = opened_at
        self.last_record_at = opened_at

    @property
    def buffered_bytes(self) -> int:
        return self._data.buffer.nbytes + self._quarantine.buffer.nbytes

    @property
    def buffered_rows(self) -> int:
        return self._data.buffer.rows + self._quarantine.buffer.rows

    @property
    def open_files(self) -> int:
        return (self._data.file is not None) + (self._quarantine.file is not None)

    def append(
        self, decoded: DecodedBatch, conversion: Conversion, monotonic_now: float, wall_now: float
    ) -> None:
        """Buffer a converted poll (and its rejects); write row groups that reach their cap."""
        days = self._settings.days
        if conversion.batch is not None:
            if self._data.day is None:
                first = kept_rows(decoded, conversion)[0]
                self._data.day = days.day(decoded.rows[first], decoded.timestamps_ms[first], wall_now)
            self._data.buffer.add(conversion.batch)
            if self._data.full:
                self._write_data()
        rejected = rejected_in_order(decoded, conversion)
        if rejected:
            if self._quarantine.day is None:
                self._quarantine.day = days.day(None, rejected[0].timestamp_ms, wall_now)
            self._quarantine.buffer.add(quarantine_batch(self.tp, rejected))
            if self._quarantine.full:
                self._write_quarantine()
        self.stats.record(decoded, conversion)
        self.last_record_at = monotonic_now

    def flush(self) -> None:
        """Write everything buffered as row groups (memory pressure, or before finishing)."""
        self._write_data()
        self._write_quarantine()

    def progress(self, compression_ratio: float, caught_up: bool) -> FileProgress:
        file = self._data.file
        return FileProgress(
            bytes_written=file.bytes_written if file else 0,
            buffered_bytes=self._data.buffer.nbytes + (file.in_flight_bytes if file else 0),
            compression_ratio=compression_ratio,
            row_groups=file.row_groups if file else 0,
            opened_at=self.opened_at,
            last_record_at=self.last_record_at,
            caught_up=caught_up,
        )

    def compression_ratio(self) -> float | None:
        """Bytes on disk per buffered Arrow byte in this segment's data file so far."""
        file = self._data.file
        if file is None or self._data.arrow_bytes_written == 0:
            return None
        return file.bytes_written / self._data.arrow_bytes_written

    def finish(self, reason: RotationReason, monotonic_now: float) -> SegmentReport:
        """Write what is buffered, publish the quarantine file, then the data file."""
        self.flush()
        dead_letters = self._settings.dead_letters
        if dead_letters is not None and self.stats.quarantined:
            dead_letters.settle()
        files = [
            report
            for sink in (self._quarantine, self._data)
            if (report := self._commit(sink, reason)) is not None
        ]
        return SegmentReport(
            self.tp,
            self.stats.first_offset,
            self.stats.last_offset,
            reason,
            monotonic_now - self.opened_at,
            files,
        )

    def abort(self) -> None:
        """Discard both files and everything buffered; nothing becomes visible."""
        self._quarantine.abort()
        self._data.abort()

    def _commit(self, sink: TableSink, reason: RotationReason) -> FileReport | None:
        if sink.file is None or sink.day is None:
            return None
        metadata = self.stats.metadata(self.tp, sink.kind, reason)
        if sink.kind is FileKind.DATA:
            metadata[f"{METADATA_PREFIX}schema"] = orjson.dumps(self.topic.registry()).decode()
        return sink.commit(self._name(sink), metadata)

    def _name(self, sink: TableSink) -> SegmentFileName:
        assert sink.day is not None  # set with the sink's first batch
        return SegmentFileName(sink.kind, self.tp.topic, self.tp.partition, self.stats.first_offset, sink.day)

    def _write_data(self) -> None:
        if not self._data.buffer:
            return
        if not self.schema.frozen:
            self._settle_columns()
            self.schema.freeze()
        self._data.write(self._name(self._data), self.schema.arrow_schema(), conform)

    def _settle_columns(self) -> None:
        """Fix the file's column kinds: the topic's current kinds (a widening made after this file
        last saw a key), claimed for the whole group; a kind claimed first by another member wins."""
        for key in self.topic.unfixed(self.schema.columns):
            kind = self.topic.columns[key].kind
            if self.topic.fixed is None:
                kind = self._settings.registry.claim(self.topic.topic, key, kind)
            self.topic.fix(key, kind)
        for key in self.schema.columns:
            self.schema.retype(key, self.topic.columns[key].kind)

    def _write_quarantine(self) -> None:
        if self._quarantine.buffer:
            self._quarantine.write(self._name(self._quarantine), QUARANTINE_SCHEMA, _same)
