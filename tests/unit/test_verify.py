"""verify: archives written by the real segment writer, checked against a fake Kafka side."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from consumer.naming import FileKind, SegmentFileName
from consumer.records import TopicPartition
from consumer.recovery import footer_values
from consumer.rotation import RotationReason
from consumer.segment import METADATA_PREFIX, Segment
from consumer.storage import LocalStorage
from consumer.verify import VerifyOptions, verify
from consumer.verify.content import data_row_problems, quarantine_row_problems, same_value
from consumer.verify.model import ClusterView, FindingKind, PartitionState, TopicRecord
from consumer.verify.report import Verification, document, write_report
from tests.support.parts import (
    JAN_1_MS,
    TP,
    WALL_NOW,
    file_schema,
    prepare,
    raw_batch,
    sink_settings,
    topic_schema,
    value,
)

Values = list[bytes | None]


def _values(first_offset: int, count: int = 10) -> Values:
    """Good objects of several kinds, one invalid value at the 4th offset and a tombstone at the 7th."""
    values: Values = []
    for index in range(count):
        offset = first_offset + index
        if index == 3:
            values.append(b"{not json")
        elif index == 6:
            values.append(None)
        else:
            amount = 1.5 if index == 0 else offset  # int into a float64 column
            values.append(value({"id": offset, "amount": amount, "tags": ["a", offset], "note": None}))
    return values


class FakeInspector:
    """The Kafka side of verify: fixed partition states and the records of a topic."""

    def __init__(
        self,
        states: Sequence[PartitionState],
        records: Sequence[TopicRecord] = (),
        missing_topics: Sequence[str] = (),
    ) -> None:
        self.states = list(states)
        self.records = sorted(records, key=lambda record: record.offset)
        self.missing_topics = list(missing_topics)
        self.reads: list[tuple[TopicPartition, int, int]] = []

    def describe(self) -> ClusterView:
        return ClusterView(self.states, self.missing_topics)

    def read(self, tp: TopicPartition, start: int, end: int, deadline: float) -> Iterator[TopicRecord]:
        assert deadline > 0
        self.reads.append((tp, start, end))
        return iter([record for record in self.records if start <= record.offset < end])

    def close(self) -> None:
        pass


class Archive:
    """Segments of partition 0 written with the real writer, and the topic records they came from."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.by_offset: dict[int, TopicRecord] = {}

    def segment(self, first_offset: int, values: Values | None = None) -> None:
        """Archive one segment of consecutive offsets (and remember its records as the topic's)."""
        values = _values(first_offset) if values is None else values
        self.topic(first_offset, values)
        segment = Segment(TP, first_offset, topic_schema(), file_schema(), sink_settings(self.root), 10.0)
        decoded, conversion = prepare(raw_batch(first_offset, values), segment.schema, segment.topic)
        segment.append(decoded, conversion, 20.0, WALL_NOW)
        segment.finish(RotationReason.SIZE, 30.0)

    def topic(self, first_offset: int, values: Values) -> None:
        """Records the topic holds, with the timestamps raw_batch gives them."""
        for index, item in enumerate(values):
            offset = first_offset + index
            self.by_offset[offset] = TopicRecord(offset, None, item, JAN_1_MS + index * 1000)

    @property
    def records(self) -> list[TopicRecord]:
        return [self.by_offset[offset] for offset in sorted(self.by_offset)]

    def path(self, kind: FileKind, first_offset: int) -> Path:
        (found,) = (self.root / _topic_dir(kind)).glob(f"date=*/{_file_name(first_offset)}")
        return found

    def verify(
        self, committed: int | None, *, low: int = 0, high: int | None = None, deep: bool = False
    ) -> Verification:
        end = high if high is not None else max([committed or 0, *(r.offset + 1 for r in self.records)])
        inspector = FakeInspector([PartitionState(TP, low, end, committed)], self.records)
        return verify(LocalStorage(self.root), inspector, VerifyOptions(deep=deep, sample=1000))


def _topic_dir(kind: FileKind) -> str:
    return TP.topic if kind is FileKind.DATA else f"_quarantine/{TP.topic}"


def _file_name(first_offset: int) -> str:
    return f"{TP.topic}+{TP.partition}+{first_offset:020d}.parquet"


def _kinds(verification: Verification) -> list[FindingKind]:
    return sorted(finding.kind for finding in verification.findings)


def _rewrite_footer(path: Path, **changes: int) -> None:
    """Rewrite a file with the same rows and its footer values changed."""
    table = pq.read_table(path)
    metadata = {
        f"{METADATA_PREFIX}{key}": text for key, text in footer_values(pq.read_metadata(path)).items()
    }
    metadata.update({f"{METADATA_PREFIX}{key}": str(number) for key, number in changes.items()})
    with pq.ParquetWriter(path, table.schema) as writer:
        writer.write_table(table)
        writer.add_key_value_metadata(metadata)


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    """Two adjacent segments, 0-9 and 10-19, each with a data file and a quarantine file."""
    built = Archive(tmp_path)
    built.segment(0)
    built.segment(10)
    return built


class TestCleanArchive:
    def test_passes_without_findings(self, archive: Archive) -> None:
        """Footers, offsets, segments and coverage up to the committed offset all agree: consistent."""
        verification = archive.verify(committed=20)
        assert verification.consistent, verification.findings
        assert verification.information == []
        (result,) = verification.partitions
        assert (result.files, len(result.segments), result.archived) == (4, 2, (0, 19))

    def test_passes_deep_with_every_record_compared(self, archive: Archive) -> None:
        """--deep: every record is in one row (tombstones skipped) and every row's content matches."""
        verification = archive.verify(committed=20, deep=True)
        assert verification.consistent, verification.findings
        assert verification.information == []

    def test_deep_reads_the_archived_range_once(self, archive: Archive) -> None:
        """--deep reads the topic once per partition, from the archive's start to the committed offset."""
        inspector = FakeInspector([PartitionState(TP, 0, 20, 20)], archive.records)
        verify(LocalStorage(archive.root), inspector, VerifyOptions(deep=True))
        assert inspector.reads == [(TP, 0, 20)]

    def test_archive_ahead_of_the_commit_is_information(self, archive: Archive) -> None:
        """Finished files past the committed offset (a crash before the commit) are reported, not failed."""
        verification = archive.verify(committed=10, deep=True)
        assert verification.consistent, verification.findings
        assert [finding.kind for finding in verification.information] == [FindingKind.ARCHIVE_AHEAD]


class TestFiles:
    def test_truncated_file_is_unreadable(self, archive: Archive) -> None:
        """A data file cut in half is reported unreadable, with its path."""
        path = archive.path(FileKind.DATA, 0)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        verification = archive.verify(committed=20)
        unreadable = [f for f in verification.findings if f.kind is FindingKind.UNREADABLE]
        assert [f.path for f in unreadable] == [str(path.relative_to(archive.root))]
        assert FindingKind.GAP in _kinds(verification)  # its records are no longer archived

    def test_records_count_disagreeing_with_rows_is_found(self, archive: Archive) -> None:
        """A footer whose archiver.records differs from the file's row count is a footer finding."""
        path = archive.path(FileKind.DATA, 0)
        _rewrite_footer(path, records=99)
        (finding,) = archive.verify(committed=20).findings
        assert finding.kind is FindingKind.FOOTER
        assert "archiver.records is 99 but the file has 8 rows" in finding.detail

    def test_offsets_outside_the_footer_range_are_found(self, archive: Archive) -> None:
        """_offset values beyond the footer's last offset are a footer finding."""
        path = archive.path(FileKind.DATA, 0)
        _rewrite_footer(path, last_offset=5)
        details = [f.detail for f in archive.verify(committed=20).findings if f.kind is FindingKind.FOOTER]
        assert any("outside the footer's 0-5" in detail for detail in details)

    def test_stale_in_progress_file_is_found(self, archive: Archive) -> None:
        """A hidden .<name>.inprogress file left by a crash is a finding."""
        name = SegmentFileName(FileKind.DATA, TP.topic, TP.partition, 20, date(2024, 1, 1))
        stale = archive.root / name.in_progress_path
        stale.write_bytes(b"PAR1")
        (finding,) = archive.verify(committed=20).findings
        assert (finding.kind, finding.path) == (FindingKind.IN_PROGRESS, name.in_progress_path)


class TestSegments:
    def test_overlapping_segment_is_a_duplicate(self, archive: Archive) -> None:
        """A segment whose range overlaps another's holds records twice."""
        archive.segment(15)
        duplicates = [f for f in archive.verify(committed=25).findings if f.kind is FindingKind.DUPLICATE]
        assert [(f.first_offset, f.last_offset) for f in duplicates] == [(15, 24)]
        assert "offsets 15-19" in duplicates[0].detail

    def test_counts_larger_than_the_range_are_found(self, archive: Archive) -> None:
        """Data rows + quarantined + skipped beyond the range's length is a counts finding."""
        for kind in FileKind:
            _rewrite_footer(archive.path(kind, 0), skipped=5)
        assert _kinds(archive.verify(committed=20)) == [FindingKind.COUNTS]

    def test_missing_quarantine_file_is_found(self, archive: Archive) -> None:
        """A segment counting quarantined records without a quarantine file is a missing-file finding."""
        archive.path(FileKind.QUARANTINE, 10).unlink()
        assert _kinds(archive.verify(committed=20)) == [FindingKind.MISSING_FILE]

    def test_copied_file_under_another_name_is_found_deep(self, archive: Archive) -> None:
        """A data file copied under another start offset: footer, overlap and --deep duplicate rows."""
        original = archive.path(FileKind.DATA, 0)
        shutil.copy(original, original.with_name(_file_name(5)))
        kinds = set(_kinds(archive.verify(committed=20, deep=True)))
        assert {FindingKind.FOOTER, FindingKind.DUPLICATE} <= kinds
        details = [f.detail for f in archive.verify(committed=20, deep=True).findings]
        assert any("8 records are in more than one row" in detail for detail in details)


class TestCoverage:
    def test_hole_below_the_commit_is_a_gap(self, tmp_path: Path) -> None:
        """Offsets between two segments below the committed offset are a gap, unread without --deep."""
        archive = Archive(tmp_path)
        archive.segment(0)
        archive.segment(20)
        (gap,) = archive.verify(committed=30, high=30).findings
        assert (gap.kind, gap.first_offset, gap.last_offset) == (FindingKind.GAP, 10, 19)

    def test_hole_with_records_is_a_gap_deep(self, tmp_path: Path) -> None:
        """--deep: a hole in which the topic has records stays a gap and says how many."""
        archive = Archive(tmp_path)
        archive.segment(0)
        archive.topic(10, _values(10))
        archive.segment(20)
        (gap,) = archive.verify(committed=30, deep=True).findings
        assert gap.kind is FindingKind.GAP
        assert "the topic has 10 records there" in gap.detail

    def test_hole_without_records_is_explained_deep(self, tmp_path: Path) -> None:
        """--deep: a hole in which the topic has no records (compaction) is information only."""
        archive = Archive(tmp_path)
        archive.segment(0)
        archive.segment(20)
        verification = archive.verify(committed=30, deep=True)
        assert verification.consistent, verification.findings
        assert [f.kind for f in verification.information] == [FindingKind.EXPLAINED_HOLE]

    def test_hole_below_the_low_watermark_is_explained_by_retention(self, tmp_path: Path) -> None:
        """Offsets deleted by retention (below the low watermark) need not be archived."""
        archive = Archive(tmp_path)
        archive.segment(20)
        assert archive.verify(committed=30, low=20).consistent

    def test_deep_reads_a_leading_hole_from_the_low_watermark(self, tmp_path: Path) -> None:
        """--deep starts reading at the low watermark when the archive starts above it, to check that hole."""
        archive = Archive(tmp_path)
        archive.topic(0, _values(0))
        archive.segment(10)
        inspector = FakeInspector([PartitionState(TP, 0, 20, 20)], archive.records)
        verification = verify(LocalStorage(archive.root), inspector, VerifyOptions(deep=True))
        assert inspector.reads == [(TP, 0, 20)]
        (gap,) = verification.findings
        assert (gap.kind, gap.first_offset, gap.last_offset) == (FindingKind.GAP, 0, 9)

    def test_commit_past_the_archive_end_is_a_loss(self, archive: Archive) -> None:
        """A committed offset beyond the archive's end with records in between is a loss."""
        archive.topic(20, _values(20, 5))
        (loss,) = archive.verify(committed=25, deep=True).findings
        assert (loss.kind, loss.first_offset, loss.last_offset) == (FindingKind.LOSS, 20, 24)


class TestDeep:
    def test_record_in_neither_file_is_found(self, archive: Archive) -> None:
        """A record inside a segment's range that is neither a data nor a quarantine row is missing."""
        archive.by_offset[6] = archive.by_offset[6]._replace(
            value=value({"id": 6})
        )  # archived as a tombstone
        (finding,) = archive.verify(committed=20, deep=True).findings
        assert (finding.kind, finding.first_offset) == (FindingKind.MISSING_RECORD, 0)
        assert "the first at offset 6" in finding.detail

    def test_changed_content_is_found(self, archive: Archive) -> None:
        """A data row whose rebuilt object differs from the record's JSON is a content finding."""
        archive.by_offset[12] = archive.by_offset[12]._replace(
            value=value({"id": 12, "amount": 13, "tags": []})
        )
        (finding,) = archive.verify(committed=20, deep=True).findings
        assert (finding.kind, finding.first_offset) == (FindingKind.CONTENT, 12)
        assert "value differs at keys amount, tags" in finding.detail

    def test_changed_quarantined_bytes_are_found(self, archive: Archive) -> None:
        """A quarantine row whose bytes differ from the record's value is a content finding."""
        archive.by_offset[3] = archive.by_offset[3]._replace(value=b"{other")
        (finding,) = archive.verify(committed=20, deep=True).findings
        assert (finding.kind, finding.first_offset) == (FindingKind.CONTENT, 3)

    def test_uncounted_tombstone_is_found(self, archive: Archive) -> None:
        """A tombstone in a segment whose footer counts no skipped record is a counts finding."""
        for kind in FileKind:
            _rewrite_footer(archive.path(kind, 0), skipped=0)
        kinds = _kinds(archive.verify(committed=20, deep=True))
        assert FindingKind.COUNTS in kinds

    def test_without_offset_column_deep_checks_are_limited(self, tmp_path: Path) -> None:
        """Data files without _offset: --deep says its row checks are limited, and still passes."""
        archive = Archive(tmp_path)
        archive.segment(0)
        path = archive.path(FileKind.DATA, 0)
        table = pq.read_table(path).drop_columns(["_offset"])
        metadata = {f"{METADATA_PREFIX}{k}": v for k, v in footer_values(pq.read_metadata(path)).items()}
        with pq.ParquetWriter(path, table.schema) as writer:
            writer.write_table(table)
            writer.add_key_value_metadata(metadata)
        verification = archive.verify(committed=10, deep=True)
        assert verification.consistent, verification.findings
        assert [f.kind for f in verification.information] == [FindingKind.LIMITED]


class TestContent:
    def test_integers_equal_floats_but_booleans_equal_only_booleans(self) -> None:
        """JSON comparison: 2 == 2.0, but true is not 1, and nesting is compared the same way."""
        assert same_value({"a": [2, {"b": 3}]}, {"a": [2.0, {"b": 3.0}]})
        assert not same_value({"a": True}, {"a": 1})
        assert not same_value([1, 2], [1])


class TestReport:
    def test_json_document_lists_partitions_and_findings(self, tmp_path: Path) -> None:
        """--json: consistent flag, one entry per partition, findings with kind, place, detail and path."""
        archive = Archive(tmp_path)
        archive.segment(0)
        archive.segment(20)
        out = io.StringIO()
        write_report(archive.verify(committed=30), as_json=True, out=out)
        report = orjson.loads(out.getvalue())
        assert report["consistent"] is False
        (partition,) = report["partitions"]
        assert {k: partition[k] for k in ("topic", "partition", "files", "committed", "findings")} == {
            "topic": "events",
            "partition": 0,
            "files": 4,
            "committed": 30,
            "findings": 1,
        }
        (gap,) = report["findings"]
        assert {k: gap[k] for k in ("kind", "topic", "partition", "first_offset", "path")} == {
            "kind": "gap",
            "topic": "events",
            "partition": 0,
            "first_offset": 10,
            "path": None,
        }

    def test_table_has_a_line_per_partition_and_per_finding(self, tmp_path: Path) -> None:
        """The readable report: header, a partition line, the finding, the verdict."""
        archive = Archive(tmp_path)
        archive.segment(0)
        archive.segment(20)
        out = io.StringIO()
        write_report(archive.verify(committed=30), as_json=False, out=out)
        lines = out.getvalue().splitlines()
        assert lines[0].split() == [
            "topic",
            "partition",
            "files",
            "segments",
            "archived",
            "committed",
            "findings",
        ]
        assert lines[1].split() == ["events", "0", "4", "2", "0-29", "30", "1"]
        assert any(line.strip().startswith("gap: events[0] @10-19:") for line in lines)
        assert lines[-1].startswith("INCONSISTENT: 1 finding")

    def test_topic_missing_from_the_cluster_is_a_finding(self, archive: Archive) -> None:
        """A listed topic the cluster lacks fails verification; its files are still checked."""
        verification = verify(
            LocalStorage(archive.root), FakeInspector([], missing_topics=[TP.topic]), VerifyOptions()
        )
        (missing,) = verification.findings
        assert (missing.kind, missing.topic, missing.partition) == (FindingKind.TOPIC_MISSING, TP.topic, None)
        assert [result.files for result in verification.partitions] == [4]

    def test_partition_without_kafka_state_is_checked_by_files(self, archive: Archive) -> None:
        """An archived partition the cluster lacks: files checked, coverage noted as unchecked."""
        other = PartitionState(TopicPartition(TP.topic, 1), 0, 0, None)
        verification = verify(LocalStorage(archive.root), FakeInspector([other]), VerifyOptions())
        assert verification.consistent
        assert [f.kind for f in verification.information] == [FindingKind.NOTE]
        assert [p["committed"] for p in document(verification)["partitions"]] == [None, None]


HEADED_RECORD = TopicRecord(4, None, b'{"a": 1}', None, [("trace", b"t-1"), ("trace", None)])
HEADERS_COLUMN = ({"key": "trace", "value": b"t-1"}, {"key": "trace", "value": None})


class TestHeadersContent:
    """--deep compares an archived `_headers` with the headers of the record read back from Kafka."""

    def test_a_row_with_the_records_headers_is_sound(self) -> None:
        assert data_row_problems(HEADED_RECORD, {"a": 1, "_headers": list(HEADERS_COLUMN)}) == []

    def test_a_row_with_other_headers_is_found(self) -> None:
        for archived in ([HEADERS_COLUMN[0]], None):
            problems = data_row_problems(HEADED_RECORD, {"a": 1, "_headers": archived})
            assert problems == ["_headers differ from the record's headers"]

    def test_a_quarantine_row_without_headers_read_is_sound_but_other_headers_are_found(self) -> None:
        """A quarantine row always has `_headers`: null when headers were not read, so only a value counts."""
        assert quarantine_row_problems(HEADED_RECORD, {"value": b'{"a": 1}', "_headers": None}) == []
        other = {"value": b'{"a": 1}', "_headers": [HEADERS_COLUMN[1]]}
        assert quarantine_row_problems(HEADED_RECORD, other) == ["_headers differ from the record's headers"]
