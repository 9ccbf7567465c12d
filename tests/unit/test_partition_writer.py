"""Per-partition writer: replays dropped, rotation with the learnt compression ratio, finish and abort."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer import partition_writer
from consumer.convert import metadata_fields
from consumer.naming import FileKind
from consumer.partition_writer import PartitionWriter
from consumer.records import RawBatch
from consumer.rotation import RotationPolicy, RotationReason
from consumer.segment import SegmentReport
from tests.support.parts import METADATA_COLUMNS, TP, feed, raw_batch, rows, sink_settings, topic_schema

ROOMY = RotationPolicy(
    file_max_bytes=1 << 40, file_max_age_s=60.0, file_max_idle_s=10.0, file_max_row_groups=100
)


def _writer(root: Path, policy: RotationPolicy = ROOMY) -> tuple[PartitionWriter, list[SegmentReport]]:
    finished: list[SegmentReport] = []
    writer = PartitionWriter(
        TP, topic_schema(), metadata_fields(METADATA_COLUMNS), sink_settings(root), policy, finished.append
    )
    return writer, finished


def _files(root: Path) -> list[str]:
    """The archive's files (the column claims under <topic>/_columns/ left out)."""
    paths = (path.relative_to(root) for path in root.rglob("*") if path.is_file())
    return sorted(str(path) for path in paths if "_columns" not in path.parts)


def _columns(raw: RawBatch) -> tuple[list[int], list[int | None], list[bytes | None], list[bytes | None]]:
    return raw.offsets, raw.timestamps_ms, raw.keys, raw.values


class TestUnseen:
    def test_keeps_everything_before_the_first_record(self, tmp_path: Path) -> None:
        """A writer that expects no particular offset keeps the whole poll."""
        writer, _ = _writer(tmp_path)
        raw = rows(5, 3)
        assert writer.unseen(raw) is raw

    def test_keeps_a_poll_at_or_after_the_next_offset(self, tmp_path: Path) -> None:
        """A poll starting at next_offset (or beyond) is kept whole."""
        writer, _ = _writer(tmp_path)
        writer.next_offset = 5
        at, beyond = rows(5, 3), rows(9, 2)
        assert writer.unseen(at) is at
        assert writer.unseen(beyond) is beyond

    def test_drops_replayed_records(self, tmp_path: Path) -> None:
        """Records below next_offset are dropped from every column; the rest are kept in order."""
        writer, _ = _writer(tmp_path)
        writer.next_offset = 7
        raw = raw_batch(5, [b"5", b"6", b"7", None], [1, 2, 3, 4])
        unseen = writer.unseen(raw)
        assert unseen is not None
        assert unseen.tp == TP
        assert _columns(unseen) == ([7, 8], [3, 4], [None, None], [b"7", None])

    def test_a_poll_entirely_replayed_is_none(self, tmp_path: Path) -> None:
        """A poll whose every record is below next_offset yields None."""
        writer, _ = _writer(tmp_path)
        writer.next_offset = 10
        assert writer.unseen(rows(5, 5)) is None

    def test_append_moves_next_offset_past_the_poll(self, tmp_path: Path) -> None:
        """After a poll is appended, next_offset is its last offset + 1, tombstones included."""
        writer, _ = _writer(tmp_path)
        feed(writer, raw_batch(3, [b'{"id": 1}', None]), 0.0)
        assert writer.next_offset == 5
        feed(writer, rows(3, 4), 0.0)  # a replay: only offsets 5 and 6 are new
        assert writer.next_offset == 7
        assert writer.buffered_rows == 3


class TestRotationDue:
    def test_nothing_due_without_a_segment(self, tmp_path: Path) -> None:
        """A writer with no open segment never rotates."""
        writer, _ = _writer(tmp_path)
        assert writer.rotation(1e9)[0] is None

    def test_age_and_idleness_follow_the_clock(self, tmp_path: Path) -> None:
        """The policy sees the segment's opening and last-record times against `now`."""
        writer, _ = _writer(tmp_path)
        feed(writer, rows(0, 2), 100.0)
        writer.reached_end(2)
        assert writer.rotation(109.9)[0] is None
        assert writer.rotation(110.0)[0] is RotationReason.IDLE
        feed(writer, rows(2, 2), 155.0)
        assert writer.rotation(160.0)[0] is RotationReason.AGE

    def test_idle_only_once_the_partition_was_read_to_its_end(self, tmp_path: Path) -> None:
        """Records after the end the client last reported make the partition behind again: no IDLE
        until a new end at or past them is reported (an end beyond them: offsets without records,
        such as transaction markers)."""
        writer, _ = _writer(tmp_path)
        feed(writer, rows(0, 2), 100.0)
        assert not writer.caught_up
        assert writer.rotation(115.0)[0] is None
        writer.reached_end(2)
        feed(writer, rows(2, 2), 100.0)
        assert not writer.caught_up
        assert writer.rotation(115.0)[0] is None
        writer.reached_end(5)
        assert writer.caught_up
        assert writer.rotation(115.0)[0] is RotationReason.IDLE

    def test_row_groups_are_counted(self, tmp_path: Path) -> None:
        """Row groups written by flushes count toward file_max_row_groups."""
        policy = RotationPolicy(1 << 40, 60.0, 10.0, file_max_row_groups=2)
        writer, _ = _writer(tmp_path, policy)
        feed(writer, rows(0, 2), 0.0)
        writer.flush()
        assert writer.rotation(0.0)[0] is None
        feed(writer, rows(2, 2), 0.0)
        writer.flush()
        assert writer.rotation(0.0)[0] is RotationReason.ROW_GROUPS

    def test_size_uses_the_ratio_learnt_from_finished_files(self, tmp_path: Path) -> None:
        """Buffered bytes are estimated at the on-disk/Arrow ratio of the previous file, not at 1.0."""
        probe, _ = _writer(tmp_path / "probe")
        feed(probe, rows(0, 10), 0.0)
        buffered = probe.buffered_bytes
        report = probe.finish(RotationReason.SIZE, 0.0)
        assert report is not None
        ratio = report.files[0].bytes / report.files[0].arrow_bytes
        assert ratio > 1.5  # ten small rows: the footer outweighs the data
        limit = (buffered + int(buffered * ratio)) // 2
        policy = RotationPolicy(limit, 1e9, 1e9, 100)

        fresh, _ = _writer(tmp_path / "fresh", policy)
        feed(fresh, rows(10, 10), 0.0)
        assert fresh.buffered_bytes == buffered
        assert fresh.rotation(0.0)[0] is None

        seasoned, _ = _writer(tmp_path / "seasoned", policy)
        feed(seasoned, rows(0, 10), 0.0)
        seasoned.finish(RotationReason.SIZE, 0.0)
        feed(seasoned, rows(10, 10), 0.0)
        assert seasoned.rotation(0.0)[0] is RotationReason.SIZE


class TestFinish:
    def test_finish_hands_the_report_to_on_finished(self, tmp_path: Path) -> None:
        """finish() publishes the segment's files and passes its report to on_finished."""
        writer, finished = _writer(tmp_path)
        feed(writer, rows(4, 3), 0.0)
        report = writer.finish(RotationReason.AGE, 5.0)
        assert report is not None
        assert finished == [report]
        assert (report.first_offset, report.next_offset, report.reason) == (4, 7, RotationReason.AGE)
        assert [file.kind for file in report.files] == [FileKind.DATA]
        assert _files(tmp_path) == [report.files[0].path]

    def test_finish_returns_the_pools_unused_memory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each finished file hands the memory Arrow's pool keeps for reuse back to the system."""
        released: list[None] = []
        monkeypatch.setattr(partition_writer, "release_unused", lambda: released.append(None))
        writer, _ = _writer(tmp_path)
        feed(writer, rows(0, 3), 0.0)
        assert released == []
        writer.finish(RotationReason.SIZE, 0.0)
        assert len(released) == 1
        assert writer.finish(RotationReason.SHUTDOWN, 0.0) is None
        assert len(released) == 1

    def test_finish_without_a_segment_does_nothing(self, tmp_path: Path) -> None:
        """finish() with nothing open returns None and does not call on_finished."""
        writer, finished = _writer(tmp_path)
        assert writer.finish(RotationReason.SHUTDOWN, 0.0) is None
        assert finished == []

    def test_next_segment_starts_at_the_next_offset(self, tmp_path: Path) -> None:
        """After a finish, the next poll opens a new segment named by its first offset."""
        writer, _ = _writer(tmp_path)
        feed(writer, rows(0, 3), 0.0)
        writer.finish(RotationReason.SIZE, 0.0)
        feed(writer, rows(3, 2), 0.0)
        report = writer.finish(RotationReason.SIZE, 0.0)
        assert report is not None
        assert report.first_offset == 3
        assert report.files[0].path.endswith("events+0+00000000000000000003.parquet")
        assert len(_files(tmp_path)) == 2

    def test_flush_writes_the_buffer(self, tmp_path: Path) -> None:
        """flush() writes buffered rows to the in-progress file, emptying the buffer."""
        writer, _ = _writer(tmp_path)
        feed(writer, rows(0, 3), 0.0)
        writer.flush()
        assert (writer.buffered_rows, writer.buffered_bytes, writer.open_files) == (0, 0, 1)


class TestAbort:
    def test_abort_discards_the_segment(self, tmp_path: Path) -> None:
        """abort() removes written and buffered data; nothing is published or reported."""
        writer, finished = _writer(tmp_path)
        feed(writer, rows(0, 3), 0.0)
        writer.flush()
        feed(writer, rows(3, 3), 0.0)
        writer.abort()
        assert _files(tmp_path) == []
        assert (writer.buffered_rows, writer.open_files) == (0, 0)
        assert writer.finish(RotationReason.SHUTDOWN, 0.0) is None
        assert finished == []
