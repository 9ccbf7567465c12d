"""The rebalance listener: where partitions start, and what revoke, loss and abort do to open segments."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import structlog

from consumer.assignment import Assignment
from consumer.column_registry import ColumnRegistry
from consumer.convert import metadata_fields
from consumer.counters import Histogram
from consumer.errors import StorageError
from consumer.naming import FileKind
from consumer.offsets import OffsetCommitter
from consumer.partition_writer import PartitionWriter
from consumer.records import TopicPartition
from consumer.recovery import Recovery
from consumer.rotation import RotationPolicy, RotationReason
from consumer.schema import Kind, TopicSchema
from consumer.segment import SegmentReport
from consumer.storage import LocalStorage, TopicListing
from consumer.topic_schemas import TopicSchemas
from tests.support.parts import (
    EAGER_SCHEMA,
    METADATA_COLUMNS,
    TOPIC,
    TP,
    FakeClock,
    FakeCommit,
    feed,
    rows,
    sink_settings,
    topic_schema,
)

OTHER = TopicPartition(TOPIC, 1)
POLICY = RotationPolicy(1 << 40, 1e9, 1e9, 100)


def _recovery(storage: LocalStorage) -> Recovery:
    return Recovery(storage, ColumnRegistry(storage))


class SlowListing(LocalStorage):
    """A local archive whose every listing takes `listing_s` on the fake clock, as a large one would."""

    def __init__(self, root: Path, clock: FakeClock, listing_s: float) -> None:
        super().__init__(root)
        self._clock = clock
        self._listing_s = listing_s

    def scan(self, kind: FileKind, topic: str) -> TopicListing:
        self._clock.advance(self._listing_s)
        return super().scan(kind, topic)


@dataclass
class Member:
    """An Assignment wired as the daemon wires it, on tmp_path, with a fake commit and a fake clock."""

    root: Path
    clock: FakeClock
    commit: FakeCommit = field(default_factory=FakeCommit)
    reports: list[SegmentReport] = field(default_factory=list)
    listing_s: float = 0.0

    def __post_init__(self) -> None:
        self.committer = OffsetCommitter(self.commit, Histogram())
        self.assignment = Assignment(
            _recovery(SlowListing(self.root, self.clock, self.listing_s)),
            TopicSchemas(EAGER_SCHEMA),
            self._make_writer,
            self.committer,
            self.clock,
        )

    def _make_writer(self, tp: TopicPartition, topic: TopicSchema) -> PartitionWriter:
        settings = sink_settings(self.root)
        return PartitionWriter(
            tp, topic, metadata_fields(METADATA_COLUMNS), settings, POLICY, self.reports.append
        )

    def writer(self, tp: TopicPartition = TP) -> PartitionWriter:
        writer = self.assignment.writer(tp)
        assert writer is not None
        return writer

    def files(self) -> list[str]:
        paths = (path.relative_to(self.root) for path in self.root.rglob("*") if path.is_file())
        return sorted(str(path) for path in paths if "_columns" not in path.parts)  # claims are not files


def _archive(root: Path, first: int, count: int, tp: TopicPartition = TP) -> None:
    """A finished segment on disk, as an earlier member left it."""
    writer = PartitionWriter(
        tp, topic_schema(), metadata_fields(METADATA_COLUMNS), sink_settings(root), POLICY, lambda _r: None
    )
    feed(writer, rows(first, count, tp), 0.0)
    writer.finish(RotationReason.SIZE, 0.0)


class TestAssigned:
    def test_starts_at_the_group_offset_without_an_archive(self, tmp_path: Path, clock: FakeClock) -> None:
        """With no files, a partition starts at its committed offset and nothing is pending."""
        member = Member(tmp_path, clock)
        assert member.assignment.assigned({TP: 42}) == {TP: 42}
        assert member.writer().next_offset == 42
        assert member.assignment.take_pending() == {}

    def test_starts_nowhere_without_offset_or_archive(self, tmp_path: Path, clock: FakeClock) -> None:
        """With neither a committed offset nor files, the start is None (the reset policy decides)."""
        member = Member(tmp_path, clock)
        assert member.assignment.assigned({TP: None}) == {TP: None}
        assert member.writer().next_offset is None
        assert len(member.assignment) == 1

    def test_archive_ahead_of_the_group(self, tmp_path: Path, clock: FakeClock) -> None:
        """An archive ending after the committed offset wins, and its offset is remembered for commit."""
        _archive(tmp_path, 0, 10)
        member = Member(tmp_path, clock)
        assert member.assignment.assigned({TP: 5}) == {TP: 10}
        assert member.writer().next_offset == 10
        assert member.assignment.take_pending() == {TP: 10}
        assert member.assignment.take_pending() == {}

    def test_archive_without_a_group_offset(self, tmp_path: Path, clock: FakeClock) -> None:
        """A group that never committed starts after the archive, with that offset pending."""
        _archive(tmp_path, 0, 10)
        member = Member(tmp_path, clock)
        assert member.assignment.assigned({TP: None}) == {TP: 10}
        assert member.assignment.take_pending() == {TP: 10}

    def test_group_ahead_of_the_archive(self, tmp_path: Path, clock: FakeClock) -> None:
        """A committed offset beyond the archive wins and nothing is pending."""
        _archive(tmp_path, 0, 10)
        member = Member(tmp_path, clock)
        assert member.assignment.assigned({TP: 20}) == {TP: 20}
        assert member.assignment.take_pending() == {}

    def test_each_partition_starts_on_its_own(self, tmp_path: Path, clock: FakeClock) -> None:
        """Partitions of one assignment get their own starts from their own archives."""
        _archive(tmp_path, 0, 10, OTHER)
        member = Member(tmp_path, clock)
        assert member.assignment.assigned({TP: 3, OTHER: None}) == {TP: 3, OTHER: 10}
        assert member.assignment.take_pending() == {OTHER: 10}

    def test_tracks_the_group_offset_for_commits(self, tmp_path: Path, clock: FakeClock) -> None:
        """The committer follows each assigned partition from its group offset."""
        member = Member(tmp_path, clock)
        member.assignment.assigned({TP: 5})
        assert member.committer.committed(TP) == 5

    def test_seeds_the_topic_schema_from_the_archive(self, tmp_path: Path, clock: FakeClock) -> None:
        """Column kinds of the newest data file are adopted, fixed, by the writer's topic schema."""
        _archive(tmp_path, 0, 3)
        member = Member(tmp_path, clock)
        member.assignment.assigned({TP: None})
        topic = member.writer().topic
        assert topic.registry() == {"id": "int64", "name": "string"}
        assert topic.kind("id") is Kind.INT64
        assert topic.columns["id"].fixed

    def test_reports_how_long_recovery_took(self, tmp_path: Path, clock: FakeClock) -> None:
        """partitions_assigned carries the time spent listing and reading the archive, once per event."""
        member = Member(tmp_path, clock, listing_s=0.75)
        with structlog.testing.capture_logs() as logs:
            member.assignment.assigned({TP: None, OTHER: None})
        (event,) = [entry for entry in logs if entry["event"] == "partitions_assigned"]
        assert event["recovery_s"] == 1.5  # one topic: its data files and its quarantine files listed once


class TestRevoked:
    def test_finishes_open_segments_and_commits_them(self, tmp_path: Path, clock: FakeClock) -> None:
        """Revoking publishes the open segment's file and commits the offset after it."""
        member = Member(tmp_path, clock)
        member.assignment.assigned({TP: None})
        feed(member.writer(), rows(0, 3), clock.monotonic())
        member.assignment.revoked([TP])
        assert member.commit.calls == [{TP: 3}]
        assert [report.reason for report in member.reports] == [RotationReason.REVOKE]
        assert member.files() == [member.reports[0].files[0].path]

    def test_commits_the_pending_archive_offset(self, tmp_path: Path, clock: FakeClock) -> None:
        """A partition with no open segment but an archive ahead of the group commits the archive's end."""
        _archive(tmp_path, 0, 10)
        member = Member(tmp_path, clock)
        member.assignment.assigned({TP: 5})
        member.assignment.revoked([TP])
        assert member.commit.calls == [{TP: 10}]

    def test_releases_the_partitions(self, tmp_path: Path, clock: FakeClock) -> None:
        """Revoked partitions lose their writer and are no longer followed by the committer."""
        member = Member(tmp_path, clock)
        member.assignment.assigned({TP: 5, OTHER: 5})
        member.assignment.revoked([TP])
        assert member.assignment.writer(TP) is None
        assert member.assignment.writer(OTHER) is not None
        assert member.committer.committed(TP) is None

    def test_leaves_other_partitions_alone(self, tmp_path: Path, clock: FakeClock) -> None:
        """Revoking one partition does not finish another's segment."""
        member = Member(tmp_path, clock)
        member.assignment.assigned({TP: None, OTHER: None})
        feed(member.writer(OTHER), rows(0, 3, OTHER), clock.monotonic())
        member.assignment.revoked([TP])
        assert member.commit.calls == []
        assert member.writer(OTHER).buffered_rows == 3


class TestLost:
    def test_aborts_without_committing(self, tmp_path: Path, clock: FakeClock) -> None:
        """Lost partitions' segments are discarded: no file, no commit, no writer."""
        member = Member(tmp_path, clock)
        member.assignment.assigned({TP: None})
        feed(member.writer(), rows(0, 3), clock.monotonic())
        member.writer().flush()
        member.assignment.lost([TP])
        assert member.files() == []
        assert member.commit.calls == []
        assert member.reports == []
        assert member.assignment.writer(TP) is None


class TestLifecycle:
    def test_finish_all_returns_durable_offsets(self, tmp_path: Path, clock: FakeClock) -> None:
        """finish_all() finishes every open segment at the clock's time and returns their next offsets."""
        member = Member(tmp_path, clock)
        member.assignment.assigned({TP: None, OTHER: None})
        feed(member.writer(), rows(0, 3), clock.monotonic())
        clock.advance(7.0)
        assert member.assignment.finish_all(RotationReason.SHUTDOWN) == {TP: 3}
        assert [report.age_s for report in member.reports] == [7.0]
        assert member.commit.calls == []

    def test_abort_all_silences_later_revokes(self, tmp_path: Path, clock: FakeClock) -> None:
        """After abort_all(), open segments are gone and a revoke callback neither finishes nor commits."""
        _archive(tmp_path, 0, 10, OTHER)
        member = Member(tmp_path, clock)
        archived = member.files()
        member.assignment.assigned({TP: None, OTHER: None})
        feed(member.writer(), rows(0, 3), clock.monotonic())
        member.writer().flush()
        member.assignment.abort_all()
        member.assignment.revoked([TP, OTHER])
        assert member.commit.calls == []
        assert member.reports == []
        assert member.files() == archived


class TestAbortAll:
    def test_a_file_that_cannot_be_discarded_does_not_stop_the_others(self, tmp_path: Path) -> None:
        """abort_all keeps going after one writer's abort fails, and every other writer is aborted."""
        aborted: list[int] = []

        class Writer:
            def __init__(self, tp: TopicPartition) -> None:
                self.tp = tp
                self.next_offset: int | None = None

            def abort(self) -> None:
                if self.tp.partition == 0:
                    raise StorageError("cannot discard x: Read-only file system")
                aborted.append(self.tp.partition)

        def make_writer(tp: TopicPartition, _schema: TopicSchema) -> PartitionWriter:
            return cast(PartitionWriter, Writer(tp))

        assignment = Assignment(
            _recovery(LocalStorage(tmp_path)),
            TopicSchemas(EAGER_SCHEMA),
            make_writer,
            OffsetCommitter(FakeCommit(), Histogram()),
            FakeClock(),
        )
        assignment.assigned({TopicPartition(TOPIC, 0): None, TopicPartition(TOPIC, 1): None})
        assignment.abort_all()
        assert aborted == [1]
