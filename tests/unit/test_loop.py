"""ArchiveLoop with a scripted source and a fake clock: rotation by timer, commits only after finish."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from consumer.config import Settings
from consumer.pipeline import Pipeline
from consumer.records import Poll, RawBatch, TopicPartition
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
        self.behind = False

    def poll(self) -> Poll:
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


def _pipeline(tmp_path: Path, source: ScriptedSource, clock: FakeClock, **rotation: float) -> Pipeline:
    settings = Settings.model_validate(
        {
            "kafka": {"topics": ["events"]},
            "output": {"root": str(tmp_path)},
            "rotation": {"file_max_age_s": 60.0, "file_max_idle_s": 600.0, **rotation},
        }
    )
    pipeline = Pipeline(settings, source, clock)
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
