"""Offset commits: tracked partitions only, strictly forward, and a refusal changes nothing."""

from __future__ import annotations

from consumer.counters import Histogram
from consumer.offsets import OffsetCommitter
from consumer.records import TopicPartition
from tests.support.parts import FakeCommit

A = TopicPartition("events", 0)
B = TopicPartition("events", 1)


def _committer(**tracked: int | None) -> tuple[OffsetCommitter, FakeCommit]:
    commit = FakeCommit()
    committer = OffsetCommitter(commit, Histogram())
    partitions = {"a": A, "b": B}
    for key, committed in tracked.items():
        committer.track(partitions[key], committed)
    return committer, commit


class TestOffsetCommitter:
    def test_commits_a_forward_offset(self) -> None:
        """An offset above the committed one is committed and becomes the committed value."""
        committer, commit = _committer(a=10)
        assert committer.commit({A: 15}) is True
        assert commit.calls == [{A: 15}]
        assert committer.committed(A) == 15

    def test_first_offset_of_a_partition_without_a_group_offset(self) -> None:
        """A partition the group never committed accepts any offset, even 0."""
        committer, commit = _committer(a=None)
        assert committer.committed(A) is None
        assert committer.commit({A: 0}) is True
        assert commit.calls == [{A: 0}]
        assert committer.committed(A) == 0

    def test_ignores_untracked_partitions(self) -> None:
        """Offsets of partitions that were never tracked are not committed."""
        committer, commit = _committer(a=10)
        assert committer.commit({B: 5}) is True
        assert commit.calls == []
        assert committer.committed(B) is None

    def test_never_commits_backwards(self) -> None:
        """An offset below the committed one is not committed."""
        committer, commit = _committer(a=10)
        assert committer.commit({A: 9}) is True
        assert commit.calls == []
        assert committer.committed(A) == 10

    def test_never_commits_an_equal_offset(self) -> None:
        """Committing the offset already committed calls nothing."""
        committer, commit = _committer(a=10)
        committer.commit({A: 10})
        assert commit.calls == []

    def test_commits_only_the_partitions_that_move_forward(self) -> None:
        """Of a mixed mapping, only forward offsets of tracked partitions reach the commit function."""
        committer, commit = _committer(a=10, b=20)
        committer.commit({A: 11, B: 19, TopicPartition("other", 0): 5})
        assert commit.calls == [{A: 11}]
        assert committer.committed(B) == 20

    def test_refused_commit_keeps_the_old_offset(self) -> None:
        """A CommitRefusedError makes commit() return False and leaves the committed offset as it was."""
        committer, commit = _committer(a=10)
        commit.refuse = True
        assert committer.commit({A: 15}) is False
        assert committer.committed(A) == 10

    def test_refused_offset_is_committed_on_retry(self) -> None:
        """After a refusal, the same offset is still due and is committed once Kafka accepts it."""
        committer, commit = _committer(a=10)
        commit.refuse = True
        committer.commit({A: 15})
        commit.refuse = False
        assert committer.commit({A: 15}) is True
        assert commit.calls == [{A: 15}, {A: 15}]
        assert committer.committed(A) == 15

    def test_forget_stops_committing_a_partition(self) -> None:
        """After forget(), a partition's offsets are no longer committed."""
        committer, commit = _committer(a=10)
        committer.forget(A)
        committer.commit({A: 20})
        assert commit.calls == []
        assert committer.committed(A) is None

    def test_track_again_starts_from_the_new_group_offset(self) -> None:
        """Re-tracking a partition adopts the group's offset it is given, even a lower one."""
        committer, commit = _committer(a=10)
        committer.commit({A: 20})
        committer.track(A, 5)
        committer.commit({A: 6})
        assert commit.calls == [{A: 20}, {A: 6}]

    def test_observes_the_latency_of_successful_commits(self) -> None:
        """Each accepted commit adds one observation to the latency histogram; a refused one adds none."""
        commit = FakeCommit()
        latency = Histogram()
        committer = OffsetCommitter(commit, latency)
        committer.track(A, None)
        committer.commit({A: 1})
        commit.refuse = True
        committer.commit({A: 2})
        assert latency.count == 1
