"""Recovery: where each partition's archive ends, and clearing what a crash left behind."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from consumer.column_registry import ColumnRegistry
from consumer.convert import metadata_fields
from consumer.errors import CorruptFileError
from consumer.naming import FileKind, SegmentFileName
from consumer.partition_writer import PartitionWriter
from consumer.records import TopicPartition
from consumer.recovery import PartitionArchive, Recovery
from consumer.rotation import RotationPolicy, RotationReason
from consumer.schema import Kind
from consumer.segment import SegmentReport
from consumer.storage import LocalStorage
from tests.support.parts import (
    DAY_MS,
    JAN_1_MS,
    METADATA_COLUMNS,
    TOPIC,
    feed,
    raw_batch,
    sink_settings,
    topic_schema,
    value,
)

POLICY = RotationPolicy(1 << 40, 1e9, 1e9, 100)
GOOD = value({"id": 1, "name": "a"})
BAD = b"not json"


def _recovery(storage: LocalStorage) -> Recovery:
    return Recovery(storage, ColumnRegistry(storage))


def _archive(
    root: Path, first: int, values: list[bytes | None], partition: int = 0, day_offset: int = 0
) -> SegmentReport:
    """Write and finish one segment with the real writer."""
    tp = TopicPartition(TOPIC, partition)
    writer = PartitionWriter(
        tp, topic_schema(), metadata_fields(METADATA_COLUMNS), sink_settings(root), POLICY, lambda _r: None
    )
    stamps: list[int | None] = [JAN_1_MS + day_offset * DAY_MS] * len(values)
    feed(writer, raw_batch(first, values, stamps, tp), 0.0)
    report = writer.finish(RotationReason.SIZE, 0.0)
    assert report is not None
    return report


def _path(report: SegmentReport, kind: FileKind) -> str:
    return next(file.path for file in report.files if file.kind is kind)


def _name(kind: FileKind, offset: int, partition: int = 0) -> SegmentFileName:
    return SegmentFileName(kind, TOPIC, partition, offset, date(2024, 1, 1))


def _recover(root: Path, partition: int = 0) -> PartitionArchive:
    return _recovery(LocalStorage(root)).recover(TOPIC, [partition])[partition]


class TestResumeOffset:
    def test_empty_archive_has_no_resume_offset(self, tmp_path: Path) -> None:
        """Every requested partition of a topic with no files resumes nowhere, with no schema."""
        found = _recovery(LocalStorage(tmp_path)).recover(TOPIC, [0, 1])
        assert found == {0: PartitionArchive(None, {}), 1: PartitionArchive(None, {})}

    def test_resumes_after_the_newest_data_file(self, tmp_path: Path) -> None:
        """Resume at last_offset + 1 of the segment with the highest start offset, whatever its day."""
        _archive(tmp_path, 0, [GOOD] * 5, day_offset=3)
        _archive(tmp_path, 5, [GOOD] * 4, day_offset=1)
        assert _recover(tmp_path).resume_offset == 9

    def test_resume_covers_trailing_skipped_tombstones(self, tmp_path: Path) -> None:
        """Tombstones skipped at a segment's end are behind the resume offset."""
        _archive(tmp_path, 0, [GOOD, GOOD, None, None])
        assert _recover(tmp_path).resume_offset == 4

    def test_partitions_resume_independently(self, tmp_path: Path) -> None:
        """Each partition resumes after its own files only."""
        _archive(tmp_path, 0, [GOOD] * 3, partition=0)
        _archive(tmp_path, 100, [GOOD] * 2, partition=1)
        found = _recovery(LocalStorage(tmp_path)).recover(TOPIC, [0, 1, 2])
        assert {p: archive.resume_offset for p, archive in found.items()} == {0: 3, 1: 102, 2: None}


class TestStaleFiles:
    def test_deletes_the_partitions_in_progress_files(self, tmp_path: Path) -> None:
        """In-progress data and quarantine files of the recovered partition are deleted."""
        _archive(tmp_path, 0, [GOOD])
        stale = [_name(FileKind.DATA, 1).in_progress_path, _name(FileKind.QUARANTINE, 1).in_progress_path]
        for relative in stale:
            (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / relative).write_bytes(b"half a file")
        assert _recover(tmp_path).resume_offset == 1
        assert not any((tmp_path / relative).exists() for relative in stale)

    def test_leaves_other_partitions_in_progress_files(self, tmp_path: Path) -> None:
        """In-progress files of partitions not being recovered stay where they are."""
        other = tmp_path / _name(FileKind.DATA, 0, partition=1).in_progress_path
        other.parent.mkdir(parents=True)
        other.write_bytes(b"another member's file")
        _recover(tmp_path, partition=0)
        assert other.read_bytes() == b"another member's file"


class TestQuarantineFiles:
    def test_quarantine_only_segment_is_complete(self, tmp_path: Path) -> None:
        """A newer quarantine file whose footer says the segment had no data rows ends the archive."""
        _archive(tmp_path, 0, [GOOD] * 3)
        report = _archive(tmp_path, 3, [BAD, BAD, None])
        assert [file.kind for file in report.files] == [FileKind.QUARANTINE]
        assert _recover(tmp_path).resume_offset == 6
        assert (tmp_path / _path(report, FileKind.QUARANTINE)).exists()

    def test_orphan_quarantine_file_is_deleted(self, tmp_path: Path) -> None:
        """A newer quarantine file of a segment that expected data is deleted; resume after the data file."""
        _archive(tmp_path, 0, [GOOD, BAD])
        crashed = _archive(tmp_path, 2, [GOOD, BAD, GOOD])
        (tmp_path / _path(crashed, FileKind.DATA)).unlink()  # the crash came between the two publications
        assert _recover(tmp_path).resume_offset == 2
        assert not (tmp_path / _path(crashed, FileKind.QUARANTINE)).exists()

    def test_orphan_quarantine_without_any_data_file(self, tmp_path: Path) -> None:
        """A lone orphan quarantine file is deleted and the partition has no resume offset."""
        crashed = _archive(tmp_path, 0, [GOOD, BAD])
        (tmp_path / _path(crashed, FileKind.DATA)).unlink()
        assert _recover(tmp_path).resume_offset is None
        assert not (tmp_path / _path(crashed, FileKind.QUARANTINE)).exists()

    def test_older_quarantine_file_is_left_alone(self, tmp_path: Path) -> None:
        """A quarantine file not newer than the newest data file does not change the resume offset."""
        first = _archive(tmp_path, 0, [BAD, GOOD])
        _archive(tmp_path, 2, [GOOD, GOOD])
        assert _recover(tmp_path).resume_offset == 4
        assert (tmp_path / _path(first, FileKind.QUARANTINE)).exists()


class TestCorruptFiles:
    def test_unreadable_newest_data_file(self, tmp_path: Path) -> None:
        """A newest data file that cannot be read raises CorruptFileError naming it, and is left in place."""
        _archive(tmp_path, 0, [GOOD])
        broken = tmp_path / _name(FileKind.DATA, 5).path
        broken.write_bytes(b"not parquet at all")
        with pytest.raises(CorruptFileError, match=re.escape(str(broken))):
            _recover(tmp_path)
        assert broken.read_bytes() == b"not parquet at all"

    def test_unreadable_newer_quarantine_file(self, tmp_path: Path) -> None:
        """An unreadable quarantine file newer than the data raises CorruptFileError and is left in place."""
        _archive(tmp_path, 0, [GOOD])
        broken = tmp_path / _name(FileKind.QUARANTINE, 5).path
        broken.parent.mkdir(parents=True)
        broken.write_bytes(b"truncated")
        with pytest.raises(CorruptFileError, match=re.escape(str(broken))):
            _recover(tmp_path)
        assert broken.read_bytes() == b"truncated"

    def test_footer_without_the_archiver_keys(self, tmp_path: Path) -> None:
        """A Parquet file without the archiver's footer keys counts as corrupt."""
        foreign = tmp_path / _name(FileKind.DATA, 0).path
        foreign.parent.mkdir(parents=True)
        pq.write_table(pa.table({"id": [1]}), foreign)
        with pytest.raises(CorruptFileError):
            _recover(tmp_path)
        assert foreign.exists()


class TestSchema:
    def test_column_kinds_come_from_the_topics_claims(self, tmp_path: Path) -> None:
        """Every column any file of the topic claimed seeds the schema, with its claimed kind."""
        _archive(tmp_path, 0, [value({"old": 1.5})])
        _archive(tmp_path, 1, [value({"id": 1, "name": "a", "ok": True, "tags": [1]})])
        assert _recover(tmp_path).schema == {
            "old": Kind.FLOAT64,
            "id": Kind.INT64,
            "name": Kind.STRING,
            "ok": Kind.BOOL,
            "tags": Kind.JSON,
        }

    def test_unknown_kinds_are_ignored(self, tmp_path: Path) -> None:
        """Claims of kinds this version does not know are left out of the seed."""
        registry = ColumnRegistry(LocalStorage(tmp_path))
        registry.claim(TOPIC, "a", Kind.INT64)
        claims = tmp_path / TOPIC / "_columns"
        (claims / "other.json").write_bytes(b'{"column": "b", "kind": "decimal"}')
        assert _recover(tmp_path) == PartitionArchive(None, {"a": Kind.INT64})
