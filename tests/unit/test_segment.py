"""Segments: appended polls become a data file and a quarantine file with the segment's footer."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from consumer import __version__
from consumer.naming import FileKind, SegmentFileName
from consumer.quarantine import QUARANTINE_SCHEMA, quarantine_batch
from consumer.records import Reason, Rejected, TopicPartition
from consumer.rotation import RotationReason
from consumer.segment import Segment, SegmentStats, TableSink
from consumer.storage import LocalPendingFile, LocalStorage
from tests.support.parts import (
    DAY_MS,
    JAN_1_MS,
    TP,
    WALL_NOW,
    file_schema,
    prepare,
    raw_batch,
    rows,
    sink_settings,
    topic_schema,
    value,
)

JAN_1 = date(2024, 1, 1)
HUGE_INTEGER = b'{"id": 100000000000000000000000, "name": "huge"}'  # beyond 64 bits: rejected in conversion


def _name(kind: FileKind, first_offset: int = 0, day: date = JAN_1) -> SegmentFileName:
    return SegmentFileName(kind, TP.topic, TP.partition, first_offset, day)


def _segment(
    root: Path, first_offset: int = 0, *, max_rows: int = 1_000_000, max_bytes: int = 1 << 26
) -> Segment:
    settings = sink_settings(root, row_group_max_rows=max_rows, row_group_max_bytes=max_bytes)
    return Segment(TP, first_offset, topic_schema(), file_schema(), settings, opened_at=10.0)


def _append(
    segment: Segment,
    raw_values: list[bytes | None],
    first_offset: int,
    timestamps: list[int | None] | None = None,
) -> None:
    raw = raw_batch(first_offset, raw_values, timestamps)
    decoded, conversion = prepare(raw, segment.schema, segment.topic)
    segment.append(decoded, conversion, 20.0, WALL_NOW)


def _append_rows(segment: Segment, first_offset: int, count: int) -> None:
    decoded, conversion = prepare(rows(first_offset, count), segment.schema, segment.topic)
    segment.append(decoded, conversion, 20.0, WALL_NOW)


def _footer(path: Path) -> dict[str, str]:
    raw = pq.read_metadata(path).metadata
    return {k.decode(): v.decode() for k, v in raw.items() if k.startswith(b"archiver.")}


def _files(root: Path) -> list[str]:
    """The archive's files (the column claims under <topic>/_columns/ left out)."""
    paths = (path.relative_to(root) for path in root.rglob("*") if path.is_file())
    return sorted(str(path) for path in paths if "_columns" not in path.parts)


def _rejected(offset: int, timestamp_ms: int | None = JAN_1_MS) -> Rejected:
    return Rejected(offset, timestamp_ms, None, b"{", Reason.INVALID_JSON, "broken")


class RecordingStorage(LocalStorage):
    """LocalStorage that records the order in which files are committed."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.committed: list[str] = []

    def create(self, name: SegmentFileName) -> LocalPendingFile:
        committed = self.committed

        class Recording(LocalPendingFile):
            def commit(self) -> int:
                committed.append(name.path)
                return super().commit()

        return Recording(self.root, name)


class TestSegmentStats:
    def test_offsets_span_rejected_and_skipped_records(self, tmp_path: Path) -> None:
        """first/last offsets cover every record, including a rejected one and tombstones at the ends."""
        segment = _segment(tmp_path)
        raw = raw_batch(10, [None, value({"id": 1}), b"not json", None])
        decoded, conversion = prepare(raw, segment.schema, segment.topic)
        stats = SegmentStats(10)
        stats.record(decoded, conversion)
        assert (stats.first_offset, stats.last_offset) == (10, 13)

    def test_counts_rows_rejects_and_skips(self, tmp_path: Path) -> None:
        """Rows, quarantined (decoder and conversion rejects) and skipped records are counted per poll."""
        segment = _segment(tmp_path)
        raw = raw_batch(0, [value({"id": 1}), b"not json", None, HUGE_INTEGER, value({"id": 2})])
        decoded, conversion = prepare(raw, segment.schema, segment.topic)
        stats = SegmentStats(0)
        stats.record(decoded, conversion)
        stats.record(decoded, conversion)
        assert (stats.rows, stats.quarantined, stats.skipped) == (4, 4, 2)

    def test_timestamps_span_polls_and_ignore_missing_ones(self, tmp_path: Path) -> None:
        """min/max timestamps cover every poll; records without a timestamp do not count."""
        segment = _segment(tmp_path)
        stats = SegmentStats(0)
        for first, stamps in ((0, [500, None]), (2, [None, 900]), (4, [100, 300]), (6, [None, None])):
            raw = raw_batch(first, [value({"id": 1}), value({"id": 2})], stamps)
            stats.record(*prepare(raw, segment.schema, segment.topic))
        assert (stats.data_time.low, stats.data_time.high) == (100, 900)

    def test_metadata_is_prefixed_and_counts_per_kind(self) -> None:
        """Footer keys carry the archiver. prefix; records is rows for data, rejects for quarantine."""
        stats = SegmentStats(5, last_offset=9, rows=3, quarantined=1, skipped=1)
        data = stats.metadata(TP, FileKind.DATA, RotationReason.AGE)
        quarantine = stats.metadata(TP, FileKind.QUARANTINE, RotationReason.AGE)
        assert data == {
            "archiver.version": __version__,
            "archiver.kind": "data",
            "archiver.topic": "events",
            "archiver.partition": "0",
            "archiver.first_offset": "5",
            "archiver.last_offset": "9",
            "archiver.records": "3",
            "archiver.data_records": "3",
            "archiver.quarantined": "1",
            "archiver.skipped": "1",
            "archiver.min_timestamp_ms": "",
            "archiver.max_timestamp_ms": "",
            "archiver.rotation_reason": "age",
        }
        assert (quarantine["archiver.kind"], quarantine["archiver.records"]) == ("quarantine", "1")


class TestTableSink:
    def _sink(self, root: Path, max_rows: int = 1_000_000, max_bytes: int = 1 << 26) -> TableSink:
        settings = sink_settings(root, row_group_max_rows=max_rows, row_group_max_bytes=max_bytes)
        return TableSink(settings, FileKind.QUARANTINE)

    def test_write_without_rows_creates_no_file(self, tmp_path: Path) -> None:
        """Writing an empty buffer opens no file."""
        sink = self._sink(tmp_path)
        sink.write(_name(FileKind.QUARANTINE), QUARANTINE_SCHEMA, lambda b, _s: b)
        assert sink.file is None
        assert _files(tmp_path) == []

    def test_write_empties_the_buffer_into_one_row_group(self, tmp_path: Path) -> None:
        """write() opens the file on first use and writes the whole buffer as one row group."""
        sink = self._sink(tmp_path)
        batch = quarantine_batch(TP, [_rejected(0), _rejected(1)])
        sink.buffer.add(batch)
        sink.write(_name(FileKind.QUARANTINE), QUARANTINE_SCHEMA, lambda b, _s: b)
        assert sink.file is not None
        assert (sink.file.row_groups, sink.file.rows) == (1, 2)
        assert sink.buffer.rows == 0
        assert sink.arrow_bytes_written == batch.get_total_buffer_size()
        sink.abort()

    def test_full_at_the_row_cap(self, tmp_path: Path) -> None:
        """The buffer is full once it holds row_group_max_rows rows, not before."""
        sink = self._sink(tmp_path, max_rows=2)
        sink.buffer.add(quarantine_batch(TP, [_rejected(0)]))
        assert not sink.full
        sink.buffer.add(quarantine_batch(TP, [_rejected(1)]))
        assert sink.full

    def test_full_at_the_byte_cap(self, tmp_path: Path) -> None:
        """The buffer is full once its bytes reach row_group_max_bytes, not before."""
        batch = quarantine_batch(TP, [_rejected(0)])
        size = batch.get_total_buffer_size()
        exact, roomy = self._sink(tmp_path, max_bytes=size), self._sink(tmp_path, max_bytes=size + 1)
        exact.buffer.add(batch)
        roomy.buffer.add(batch)
        assert exact.full
        assert not roomy.full

    def test_commit_without_a_file_reports_nothing(self, tmp_path: Path) -> None:
        """A sink that never wrote a row group publishes nothing."""
        assert self._sink(tmp_path).commit(_name(FileKind.QUARANTINE), {}) is None

    def test_commit_reports_the_file(self, tmp_path: Path) -> None:
        """commit() publishes the file and reports its path, kind, rows, bytes, Arrow bytes and row groups."""
        sink = self._sink(tmp_path)
        name = _name(FileKind.QUARANTINE)
        batch = quarantine_batch(TP, [_rejected(0), _rejected(1)])
        sink.buffer.add(batch)
        sink.write(name, QUARANTINE_SCHEMA, lambda b, _s: b)
        report = sink.commit(name, {})
        assert report is not None
        assert (report.path, report.kind, report.rows, report.row_groups) == (
            name.path,
            FileKind.QUARANTINE,
            2,
            1,
        )
        assert report.bytes == (tmp_path / name.path).stat().st_size
        assert report.arrow_bytes == batch.get_total_buffer_size()
        assert sink.file is None

    def test_abort_discards_buffer_and_file(self, tmp_path: Path) -> None:
        """abort() empties the buffer and removes the in-progress file."""
        sink = self._sink(tmp_path)
        sink.buffer.add(quarantine_batch(TP, [_rejected(0)]))
        sink.write(_name(FileKind.QUARANTINE), QUARANTINE_SCHEMA, lambda b, _s: b)
        sink.buffer.add(quarantine_batch(TP, [_rejected(1)]))
        sink.abort()
        assert (sink.buffer.rows, sink.file) == (0, None)
        assert _files(tmp_path) == []


class TestSegment:
    def test_data_file_named_by_first_offset_and_day(self, tmp_path: Path) -> None:
        """finish() publishes the data file named by the segment's first offset and its first row's day."""
        segment = _segment(tmp_path, first_offset=5)
        _append_rows(segment, 5, 3)
        report = segment.finish(RotationReason.SIZE, 30.0)
        expected = _name(FileKind.DATA, 5).path
        assert [file.path for file in report.files] == [expected]
        assert _files(tmp_path) == [expected]

    def test_data_file_holds_the_rows(self, tmp_path: Path) -> None:
        """The data file reads back (duckdb) with every row's values and offsets."""
        segment = _segment(tmp_path)
        _append_rows(segment, 0, 2)
        _append_rows(segment, 2, 2)
        segment.finish(RotationReason.SIZE, 30.0)
        path = tmp_path / _name(FileKind.DATA).path
        query = "SELECT _offset, id, name FROM read_parquet(?) ORDER BY _offset"
        found = duckdb.execute(query, [str(path)]).fetchall()
        assert found == [(0, 0, "n0"), (1, 1, "n1"), (2, 2, "n2"), (3, 3, "n0")]

    def test_rejected_records_go_to_a_quarantine_file_of_the_same_name(self, tmp_path: Path) -> None:
        """Rejected records are written to _quarantine/<topic>/... under the data file's name."""
        segment = _segment(tmp_path)
        _append(segment, [value({"id": 1}), b"not json", value({"id": 2})], 0)
        segment.finish(RotationReason.SIZE, 30.0)
        quarantine = _name(FileKind.QUARANTINE)
        assert _files(tmp_path) == sorted([quarantine.path, _name(FileKind.DATA).path])
        query = "SELECT _offset, reason, value FROM read_parquet(?)"
        found = duckdb.execute(query, [str(tmp_path / quarantine.path)]).fetchall()
        assert found == [(1, "invalid_json", b"not json")]

    def test_no_quarantine_file_without_rejects(self, tmp_path: Path) -> None:
        """A segment whose records all became rows publishes only its data file."""
        segment = _segment(tmp_path)
        _append_rows(segment, 0, 3)
        report = segment.finish(RotationReason.SIZE, 30.0)
        assert [file.kind for file in report.files] == [FileKind.DATA]
        assert not (tmp_path / "_quarantine").exists()

    def test_quarantine_file_is_published_before_the_data_file(self, tmp_path: Path) -> None:
        """finish() commits the quarantine file first and the data file last."""
        storage = RecordingStorage(tmp_path)
        settings = sink_settings(tmp_path)
        settings = dataclasses.replace(settings, storage=storage)
        segment = Segment(TP, 0, topic_schema(), file_schema(), settings, opened_at=10.0)
        _append(segment, [value({"id": 1}), b"not json"], 0)
        report = segment.finish(RotationReason.SIZE, 30.0)
        order = [_name(FileKind.QUARANTINE).path, _name(FileKind.DATA).path]
        assert storage.committed == order
        assert [file.path for file in report.files] == order

    def test_data_footer_describes_the_segment(self, tmp_path: Path) -> None:
        """The data file's footer carries offsets, counts, timestamps, reason, kind and the schema."""
        segment = _segment(tmp_path, first_offset=10)
        polled = [None, value({"id": 1, "name": "a"}), b"not json", value({"id": 2, "name": "b"})]
        _append(segment, polled, 10, timestamps=[JAN_1_MS + 2, JAN_1_MS + 1, JAN_1_MS + 3, JAN_1_MS + 4])
        segment.finish(RotationReason.IDLE, 30.0)
        footer = _footer(tmp_path / _name(FileKind.DATA, 10).path)
        expected = {
            "kind": "data",
            "topic": "events",
            "partition": "0",
            "first_offset": "10",
            "last_offset": "13",
            "records": "2",
            "data_records": "2",
            "quarantined": "1",
            "skipped": "1",
            "min_timestamp_ms": str(JAN_1_MS + 1),
            "max_timestamp_ms": str(JAN_1_MS + 4),
            "rotation_reason": "idle",
        }
        assert {key: footer[f"archiver.{key}"] for key in expected} == expected
        assert orjson.loads(footer["archiver.schema"]) == {"id": "int64", "name": "string"}

    def test_quarantine_footer_describes_the_segment(self, tmp_path: Path) -> None:
        """The quarantine file's footer carries the same offsets, kind quarantine and its own record count."""
        segment = _segment(tmp_path, first_offset=10)
        _append(segment, [value({"id": 1}), b"not json", b"[1]", None], 10)
        segment.finish(RotationReason.AGE, 30.0)
        footer = _footer(tmp_path / _name(FileKind.QUARANTINE, 10).path)
        assert footer["archiver.kind"] == "quarantine"
        assert (footer["archiver.first_offset"], footer["archiver.last_offset"]) == ("10", "13")
        assert (footer["archiver.records"], footer["archiver.data_records"]) == ("2", "1")
        assert (footer["archiver.quarantined"], footer["archiver.skipped"]) == ("2", "1")
        assert footer["archiver.rotation_reason"] == "age"

    def test_quarantine_only_footer_has_the_records_timestamps(self, tmp_path: Path) -> None:
        """A segment of rejected records only gives its footer the min/max of those records' timestamps."""
        segment = _segment(tmp_path)
        _append(segment, [b"not json", b"[1]"], 0, timestamps=[JAN_1_MS + 7, JAN_1_MS + 2])
        segment.finish(RotationReason.AGE, 30.0)
        footer = _footer(tmp_path / _name(FileKind.QUARANTINE).path)
        assert (footer["archiver.min_timestamp_ms"], footer["archiver.max_timestamp_ms"]) == (
            str(JAN_1_MS + 2),
            str(JAN_1_MS + 7),
        )

    def test_row_group_written_when_the_row_cap_is_reached(self, tmp_path: Path) -> None:
        """The buffer is written as a row group on the append that brings it to row_group_max_rows."""
        segment = _segment(tmp_path, max_rows=3)
        _append_rows(segment, 0, 2)
        assert (segment.open_files, segment.buffered_rows) == (0, 2)
        _append_rows(segment, 2, 1)
        assert (segment.open_files, segment.buffered_rows) == (1, 0)
        _append_rows(segment, 3, 2)
        segment.finish(RotationReason.SIZE, 30.0)
        metadata = pq.read_metadata(tmp_path / _name(FileKind.DATA).path)
        assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [3, 2]

    def test_row_group_written_when_the_byte_cap_is_reached(self, tmp_path: Path) -> None:
        """A buffer filled exactly to row_group_max_bytes is written; with one byte more room it is not."""
        probe = _segment(tmp_path / "probe")
        _append_rows(probe, 0, 4)
        size = probe.buffered_bytes
        exact, roomy = _segment(tmp_path / "a", max_bytes=size), _segment(tmp_path / "b", max_bytes=size + 1)
        _append_rows(exact, 0, 4)
        _append_rows(roomy, 0, 4)
        assert (exact.open_files, exact.buffered_bytes) == (1, 0)
        assert (roomy.open_files, roomy.buffered_bytes) == (0, size)

    def test_quarantine_row_group_written_at_its_cap(self, tmp_path: Path) -> None:
        """Rejected records are written out as soon as their buffer reaches row_group_max_rows."""
        segment = _segment(tmp_path, max_rows=2)
        _append(segment, [b"not json", b"[1]"], 0)
        assert (segment.open_files, segment.buffered_rows) == (1, 0)
        assert (tmp_path / _name(FileKind.QUARANTINE).in_progress_path).exists()

    def test_flush_writes_everything_buffered(self, tmp_path: Path) -> None:
        """flush() writes the buffered rows and rejects as row groups."""
        segment = _segment(tmp_path)
        _append(segment, [value({"id": 1}), b"not json"], 0)
        segment.flush()
        assert (segment.open_files, segment.buffered_rows, segment.buffered_bytes) == (2, 0, 0)

    def test_skipped_tombstones_only_publish_nothing(self, tmp_path: Path) -> None:
        """A segment of skipped tombstones publishes no file, yet reports next_offset = last_offset + 1."""
        segment = _segment(tmp_path, first_offset=7)
        _append(segment, [None, None, None], 7)
        report = segment.finish(RotationReason.IDLE, 30.0)
        assert report.files == []
        assert (report.first_offset, report.last_offset, report.next_offset) == (7, 9, 10)
        assert _files(tmp_path) == []

    def test_report_spans_the_segment(self, tmp_path: Path) -> None:
        """The report carries the partition, offsets, reason and age since opening."""
        segment = _segment(tmp_path, first_offset=3)
        _append_rows(segment, 3, 4)
        report = segment.finish(RotationReason.REVOKE, 30.0)
        assert (report.tp, report.first_offset, report.last_offset, report.next_offset) == (TP, 3, 6, 7)
        assert (report.reason, report.age_s) == (RotationReason.REVOKE, 20.0)

    def test_abort_leaves_no_files(self, tmp_path: Path) -> None:
        """abort() after row groups were written leaves no file, finished or in progress."""
        segment = _segment(tmp_path, max_rows=1)
        _append(segment, [value({"id": 1}), b"not json"], 0)
        _append_rows(segment, 2, 1)
        assert segment.open_files == 2
        segment.abort()
        assert _files(tmp_path) == []
        assert segment.buffered_rows == 0

    def test_late_rows_join_the_file_of_the_first_row_day(self, tmp_path: Path) -> None:
        """The data file is filed under its first row's day; rows of later days join it."""
        segment = _segment(tmp_path)
        _append(segment, [value({"id": 1})], 0, timestamps=[JAN_1_MS])
        _append(segment, [value({"id": 2})], 1, timestamps=[JAN_1_MS + 2 * DAY_MS])
        segment.finish(RotationReason.SIZE, 30.0)
        assert _files(tmp_path) == [_name(FileKind.DATA).path]

    def test_data_day_ignores_a_first_record_rejected_in_conversion(self, tmp_path: Path) -> None:
        """The data file's day is that of its own first row, not of an earlier record sent to quarantine."""
        segment = _segment(tmp_path)
        _append(segment, [HUGE_INTEGER, value({"id": 2})], 0, timestamps=[JAN_1_MS, JAN_1_MS + DAY_MS])
        segment.finish(RotationReason.SIZE, 30.0)
        assert (tmp_path / _name(FileKind.DATA, day=date(2024, 1, 2)).path).exists()

    def test_quarantine_day_is_that_of_its_first_row(self, tmp_path: Path) -> None:
        """The quarantine file's day is that of its first (lowest-offset) row, whichever stage rejected it."""
        segment = _segment(tmp_path)
        _append(segment, [HUGE_INTEGER, b"not json"], 0, timestamps=[JAN_1_MS, JAN_1_MS + DAY_MS])
        segment.finish(RotationReason.SIZE, 30.0)
        path = tmp_path / _name(FileKind.QUARANTINE).path
        assert path.exists()
        first = duckdb.execute("SELECT min(_offset) FROM read_parquet(?)", [str(path)]).fetchall()
        assert first == [(0,)]


class TestColumnKindsAcrossMembers:
    def test_a_member_adopts_the_kind_another_member_claimed_first(self, tmp_path: Path) -> None:
        """Two members meeting `x` as int and as string write it with one kind; the misfits go to _extra."""
        first = _segment(tmp_path)  # each segment has its own TopicSchema, as two processes would
        _append(first, [value({"x": 1})], 0)
        first.finish(RotationReason.SIZE, 30.0)
        second = Segment(
            TopicPartition(TP.topic, 1),
            0,
            topic_schema(),
            file_schema(),
            sink_settings(tmp_path),
            opened_at=10.0,
        )
        _append(second, [value({"x": "one"}), value({"x": 2})], 0)
        second.finish(RotationReason.SIZE, 30.0)
        paths = sorted((tmp_path / TP.topic).glob("date=*/*.parquet"))
        assert [pq.read_schema(path).field("x").type for path in paths] == [pa.int64(), pa.int64()]
        rows = pq.read_table(paths[1]).to_pylist()
        assert [(row["x"], row["_extra"]) for row in rows] == [(None, '{"x":"one"}'), (2, None)]
