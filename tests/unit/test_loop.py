"""ArchiveLoop with a scripted source and a fake clock: rotation by timer, commits only after finish."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from consumer.config import Settings
from consumer.dead_letters import DeadLetters
from consumer.errors import KafkaFatalError
from consumer.partition_writer import PartitionWriter
from consumer.pipeline import Pipeline
from consumer.records import Poll, RawBatch, Reason, Rejected, TopicPartition
from consumer.rotation import RotationReason
from consumer.segment import SegmentReport
from tests.support.parts import FakeClock

TP = TopicPartition("events", 0)


class ScriptedSource:
    """Hands out prepared polls, then empty ones; records every commit.

    Like a client that has read everything there is, each poll reports its partitions at their
    end after their last record, unless `behind` is set.
    """

    def __init__(self) -> None:
        self.polls: list[list[RawBatch]] = []
        self.commits: list[dict[TopicPartition, int]] = []
        self.waits: list[float] = []
        self.behind = False

    def poll(self, max_wait_s: float) -> Poll:
        self.waits.append(max_wait_s)
        batches = self.polls.pop(0) if self.polls else []
        ends = {} if self.behind else {raw.tp: raw.offsets[-1] + 1 for raw in batches}
        return Poll(batches, ends)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))


def _raw(tp: TopicPartition, offsets: range) -> RawBatch:
    return RawBatch(
        tp,
        list(offsets),
        [1_700_000_000_000 + offset for offset in offsets],
        [None for _ in offsets],
        [orjson.dumps({"n": offset}) for offset in offsets],
    )


@pytest.fixture
def source() -> ScriptedSource:
    return ScriptedSource()


def _pipeline(
    tmp_path: Path,
    source: ScriptedSource,
    clock: FakeClock,
    dead_letters: DeadLetters | None = None,
    **rotation: float,
) -> Pipeline:
    settings = Settings.model_validate(
        {
            "kafka": {"topics": ["events"]},
            "output": {"root": str(tmp_path)},
            "rotation": {"file_max_age_s": 60.0, "file_max_idle_s": 600.0, **rotation},
        }
    )
    pipeline = Pipeline(settings, source, clock, dead_letters=dead_letters)
    pipeline.assignment.assigned({TP: None})
    return pipeline


def _finished_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "events").glob("**/*.parquet"))


class TestArchiveLoop:
    def test_quiet_partition_finishes_when_its_file_ages(
        self, tmp_path: Path, source: ScriptedSource, clock: FakeClock
    ) -> None:
        """Empty polls still rotate: at file_max_age_s the file is finished and its offset committed."""
        pipeline = _pipeline(tmp_path, source, clock)
        source.polls.append([_raw(TP, range(3))])
        pipeline.loop.iterate()
        clock.advance(59.0)
        pipeline.loop.iterate()
        assert _finished_files(tmp_path) == []
        clock.advance(1.0)
        pipeline.loop.iterate()
        assert len(_finished_files(tmp_path)) == 1
        assert source.commits == [{TP: 3}]

    def test_idle_partition_finishes_after_the_idle_timeout(
        self, tmp_path: Path, source: ScriptedSource, clock: FakeClock
    ) -> None:
        """A partition that receives nothing for file_max_idle_s finishes its file."""
        pipeline = _pipeline(tmp_path, source, clock, file_max_age_s=3600.0, file_max_idle_s=5.0)
        source.polls.append([_raw(TP, range(2))])
        pipeline.loop.iterate()
        clock.advance(4.0)
        source.polls.append([_raw(TP, range(2, 4))])
        pipeline.loop.iterate()
        clock.advance(4.9)
        pipeline.loop.iterate()
        assert source.commits == []
        clock.advance(0.1)
        pipeline.loop.iterate()
        assert source.commits == [{TP: 4}]

    def test_a_poll_waits_no_longer_than_until_a_file_comes_due_by_the_clock(
        self, tmp_path: Path, source: ScriptedSource, clock: FakeClock
    ) -> None:
        """With nothing open a poll may wait as long as the source allows; with a file open it waits
        until the file's idle timeout (or, for a partition behind its end, its age) at the most, so
        a timer fires on time rather than a poll's timeout late."""
        pipeline = _pipeline(tmp_path, source, clock, file_max_age_s=60.0, file_max_idle_s=5.0)
        pipeline.loop.iterate()
        source.polls.append([_raw(TP, range(2))])
        pipeline.loop.iterate()
        clock.advance(1.5)
        pipeline.loop.iterate()
        assert source.waits == [math.inf, math.inf, pytest.approx(3.5)]
        clock.advance(3.5)
        pipeline.loop.iterate()
        assert source.waits[-1] == 0.0
        assert source.commits == [{TP: 2}]
        source.behind = True
        source.polls.append([_raw(TP, range(2, 4))])
        pipeline.loop.iterate()
        clock.advance(10.0)
        pipeline.loop.iterate()
        assert source.waits[-1] == pytest.approx(50.0)

    def test_a_partition_the_client_has_not_read_to_its_end_is_not_idle(
        self, tmp_path: Path, source: ScriptedSource, clock: FakeClock
    ) -> None:
        """While the client serves other partitions, one that is behind gets no records for a while:
        its file stays open past file_max_idle_s until the client reports the partition's end."""
        pipeline = _pipeline(tmp_path, source, clock, file_max_age_s=3600.0, file_max_idle_s=5.0)
        source.behind = True
        source.polls.append([_raw(TP, range(2))])
        pipeline.loop.iterate()
        clock.advance(30.0)
        pipeline.loop.iterate()
        assert source.commits == []
        source.behind = False
        source.polls.append([_raw(TP, range(2, 4))])
        pipeline.loop.iterate()
        clock.advance(5.0)
        pipeline.loop.iterate()
        assert source.commits == [{TP: 4}]

    def test_nothing_is_committed_while_data_is_only_buffered(
        self, tmp_path: Path, source: ScriptedSource, clock: FakeClock
    ) -> None:
        """Polls are buffered and written, but no offset is committed before the file is finished."""
        pipeline = _pipeline(tmp_path, source, clock, row_group_max_rows=2)
        source.polls.append([_raw(TP, range(5))])
        pipeline.loop.iterate()
        assert source.commits == []
        assert list((tmp_path / "events").glob("**/.*.inprogress"))

    def test_replayed_offsets_are_archived_once(
        self, tmp_path: Path, source: ScriptedSource, clock: FakeClock
    ) -> None:
        """Records below the partition's next offset (a replay) are dropped, not written twice."""
        pipeline = _pipeline(tmp_path, source, clock)
        source.polls.extend([[_raw(TP, range(5))], [_raw(TP, range(3, 8))]])
        pipeline.loop.iterate()
        pipeline.loop.iterate()
        clock.advance(60.0)
        pipeline.loop.iterate()
        (path,) = _finished_files(tmp_path)
        assert pq.read_table(path).column("_offset").to_pylist() == list(range(8))
        assert source.commits == [{TP: 8}]

    def test_records_of_partitions_not_owned_are_ignored(
        self, tmp_path: Path, source: ScriptedSource, clock: FakeClock
    ) -> None:
        """A poll for a partition this member does not own leaves no trace and no commit."""
        pipeline = _pipeline(tmp_path, source, clock)
        source.polls.append([_raw(TopicPartition("events", 9), range(3))])
        pipeline.loop.iterate()
        clock.advance(61.0)
        pipeline.loop.iterate()
        assert not (tmp_path / "events").exists()
        assert source.commits == []
        assert pipeline.counters.records_in == 0


class TestFinishingSlice:
    """Files that come due by the clock together are finished over several iterations."""

    PARTITIONS = tuple(TopicPartition("events", partition) for partition in range(4))

    @pytest.fixture
    def slow_finish(self, monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> None:
        """Every finished file takes 0.6 s of the (fake) clock, like a slow disk or object store."""
        finish = PartitionWriter.finish

        def slow(writer: PartitionWriter, reason: RotationReason, now: float) -> SegmentReport | None:
            clock.advance(0.6)
            return finish(writer, reason, now)

        monkeypatch.setattr(PartitionWriter, "finish", slow)

    def _four_partitions(
        self, tmp_path: Path, source: ScriptedSource, clock: FakeClock, **rotation: float
    ) -> Pipeline:
        pipeline = _pipeline(tmp_path, source, clock, None, **rotation)
        pipeline.assignment.assigned(dict.fromkeys(self.PARTITIONS))
        source.polls.append([_raw(tp, range(4)) for tp in self.PARTITIONS])
        pipeline.loop.iterate()
        return pipeline

    @pytest.mark.usefixtures("slow_finish")
    def test_files_due_by_age_together_are_finished_over_several_polls(
        self, tmp_path: Path, source: ScriptedSource, clock: FakeClock
    ) -> None:
        """Past CLOCK_FINISH_SLICE_S (1 s) of finishing, the other due files wait for the next iteration."""
        p0, p1, p2, p3 = self.PARTITIONS
        pipeline = self._four_partitions(tmp_path, source, clock)
        clock.advance(60.0)
        pipeline.loop.iterate()
        assert source.commits == [{p0: 4, p1: 4}]
        pipeline.loop.iterate()
        assert source.commits[1:] == [{p2: 4, p3: 4}]
        assert len(_finished_files(tmp_path)) == 4

    @pytest.mark.usefixtures("slow_finish")
    def test_a_file_due_by_row_groups_is_never_held_back(
        self, tmp_path: Path, source: ScriptedSource, clock: FakeClock
    ) -> None:
        """Files due by their data stay within their caps, however long the clock's finishing took:
        p0 and p1 (due by age) use up the slice, p2 reaches its row-group cap, p3 (due by age) waits."""
        p0, p1, p2, _ = self.PARTITIONS
        pipeline = self._four_partitions(tmp_path, source, clock, file_max_row_groups=2, row_group_max_rows=2)
        clock.advance(60.0)
        source.polls.append([_raw(p0, range(4)), _raw(p1, range(4)), _raw(p2, range(4, 8))])
        pipeline.loop.iterate()
        assert source.commits == [{p0: 4, p1: 4, p2: 8}]


class RecordingDeadLetters:
    """Keeps what was published; settles by marking it delivered, or refuses while `refuse` is set."""

    def __init__(self, source: ScriptedSource) -> None:
        self._source = source
        self.queued: list[tuple[TopicPartition, Rejected]] = []
        self.delivered: list[tuple[TopicPartition, Rejected]] = []
        self.commits_when_settled: list[int] = []
        self.refuse = False

    def publish(self, tp: TopicPartition, rejected: Sequence[Rejected]) -> None:
        self.queued += [(tp, entry) for entry in rejected]

    def settle(self) -> None:
        if self.refuse:
            raise KafkaFatalError("dead letters not delivered")
        self.commits_when_settled.append(len(self._source.commits))
        self.delivered += self.queued
        self.queued = []


class TestDeadLetters:
    def _bad_poll(self) -> RawBatch:
        raw = _raw(TP, range(4))
        raw.values[1], raw.keys[1] = b"not json", b"k1"
        raw.values[3] = b"[1, 2]"
        return raw

    def test_rejected_records_are_published_with_their_origin(
        self, tmp_path: Path, source: ScriptedSource, clock: FakeClock
    ) -> None:
        """Each quarantined record is handed to the dead letters, with its key, value and reason."""
        dead_letters = RecordingDeadLetters(source)
        pipeline = _pipeline(tmp_path, source, clock, dead_letters)
        source.polls.append([self._bad_poll()])
        pipeline.loop.iterate()
        published = [
            (tp, entry.offset, entry.key, entry.value, entry.reason) for tp, entry in dead_letters.queued
        ]
        assert published == [
            (TP, 1, b"k1", b"not json", Reason.INVALID_JSON),
            (TP, 3, None, b"[1, 2]", Reason.NOT_AN_OBJECT),
        ]

    def test_offsets_are_committed_only_after_the_dead_letters_are_delivered(
        self, tmp_path: Path, source: ScriptedSource, clock: FakeClock
    ) -> None:
        """Before the segment's files are published, every copy is settled; then the offset is committed."""
        dead_letters = RecordingDeadLetters(source)
        pipeline = _pipeline(tmp_path, source, clock, dead_letters)
        source.polls.append([self._bad_poll()])
        pipeline.loop.iterate()
        clock.advance(60.0)
        pipeline.loop.iterate()
        assert source.commits == [{TP: 4}]
        assert dead_letters.commits_when_settled == [0]
        assert [entry.offset for _, entry in dead_letters.delivered] == [1, 3]

    def test_nothing_is_committed_when_a_dead_letter_is_not_delivered(
        self, tmp_path: Path, source: ScriptedSource, clock: FakeClock
    ) -> None:
        """A copy the client gave up on is a fatal error before the segment's files are published."""
        dead_letters = RecordingDeadLetters(source)
        pipeline = _pipeline(tmp_path, source, clock, dead_letters)
        source.polls.append([self._bad_poll()])
        pipeline.loop.iterate()
        dead_letters.refuse = True
        clock.advance(60.0)
        with pytest.raises(KafkaFatalError):
            pipeline.loop.iterate()
        assert source.commits == []
        assert not list(tmp_path.glob("**/*.parquet"))  # neither file of the segment was published
