"""KafkaSource against the real broker: batches, assignment, offsets, start-up errors."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest

from consumer.config import KafkaSettings
from consumer.errors import KafkaFatalError, KafkaUnavailableError
from consumer.kafka import KafkaSource
from consumer.records import Poll, RawBatch, TopicPartition
from tests.support.kafka_tools import committed_offsets, fetch_messages, produce


class RecordingListener:
    """Starts at the committed offset, or at `start_at` when given, and records ownership changes."""

    def __init__(self, start_at: int | None = None) -> None:
        self.start_at = start_at
        self.assigned_partitions: list[TopicPartition] = []
        self.revoked_partitions: list[TopicPartition] = []

    def assigned(self, committed: Mapping[TopicPartition, int | None]) -> Mapping[TopicPartition, int | None]:
        self.assigned_partitions.extend(committed)
        return {
            tp: self.start_at if self.start_at is not None else offset for tp, offset in committed.items()
        }

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        self.revoked_partitions.extend(partitions)

    def lost(self, partitions: Sequence[TopicPartition]) -> None:
        raise AssertionError(f"unexpected loss of {partitions}")


def _source(bootstrap: str, topic: str, group: str, **extra: object) -> KafkaSource:
    settings = KafkaSettings.model_validate(
        {
            "bootstrap_servers": bootstrap,
            "group_id": group,
            "topics": [topic],
            "poll_max_messages": 1000,
            **extra,
        }
    )
    return KafkaSource(settings, statistics_interval_s=1.0, on_lag=lambda _lag: None)


def _polls(
    source: KafkaSource, done: Callable[[], bool], progress: Callable[[], str], timeout_s: float = 60.0
) -> Iterator[Poll]:
    """The source's polls until `done()`; fails the test with `progress()` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, progress()
        yield source.poll()


def _poll_until(source: KafkaSource, count: int, timeout_s: float = 60.0) -> list[RawBatch]:
    batches: list[RawBatch] = []
    for poll in _polls(
        source,
        lambda: sum(map(len, batches)) >= count,
        lambda: f"only {sum(map(len, batches))} of {count} records arrived",
        timeout_s,
    ):
        batches.extend(poll.batches)
    return batches


def _four_and_three_records(bootstrap: str, topic_factory: Callable[[int], str]) -> str:
    """A topic of two partitions: offsets 0-3 in partition 0, 0-2 in partition 1."""
    topic = topic_factory(2)
    produce(bootstrap, topic, [(i % 2, None, f'{{"i":{i}}}'.encode()) for i in range(7)])
    return topic


def test_poll_groups_records_by_partition_in_offset_order(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str
) -> None:
    """Each RawBatch holds one partition's records as plain columns, offsets ascending."""
    topic = topic_factory(3)
    produce(kafka_bootstrap, topic, [(i % 3, f"k{i}".encode(), f'{{"i":{i}}}'.encode()) for i in range(30)])
    listener = RecordingListener()
    source = _source(kafka_bootstrap, topic, group_id)
    source.wait_for_cluster(stopping=lambda: False)
    source.subscribe(listener)
    try:
        batches = _poll_until(source, 30)
    finally:
        source.close()
    by_partition: dict[int, list[int]] = {}
    for batch in batches:
        assert len({len(batch.offsets), len(batch.values), len(batch.keys), len(batch.timestamps_ms)}) == 1
        by_partition.setdefault(batch.tp.partition, []).extend(batch.offsets)
        for key, value in zip(batch.keys, batch.values, strict=True):
            assert key is not None
            assert value == f'{{"i":{key.decode()[1:]}}}'.encode()
        assert all(isinstance(ts, int) and ts > 0 for ts in batch.timestamps_ms)
    assert by_partition == {p: list(range(10)) for p in range(3)}
    assert sorted(listener.assigned_partitions) == [TopicPartition(topic, p) for p in range(3)]


def test_runs_of_the_same_partition_of_two_topics_become_two_batches(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str
) -> None:
    """Messages of partition 0 of two topics, in alternating runs, are split into one RawBatch per
    topic, each with its own records in offset order. (The client brought each topic in polls of
    its own here, so the test orders the real messages it fetched into such runs itself.)"""
    topics = [topic_factory(1), topic_factory(1)]
    for topic in topics:
        produce(kafka_bootstrap, topic, [(0, None, f"{topic}/{i}".encode()) for i in range(4)])
    fetched = {topic: fetch_messages(kafka_bootstrap, topic, {0: 4}) for topic in topics}
    first, second = topics
    runs = [*fetched[first][:2], *fetched[second][:2], *fetched[first][2:], *fetched[second][2:]]
    source = _source(kafka_bootstrap, first, group_id)
    try:
        poll = source._by_partition(runs)
    finally:
        source.close()
    assert [(batch.tp, batch.offsets, batch.values) for batch in poll.batches] == [
        (TopicPartition(topic, 0), [0, 1, 2, 3], [f"{topic}/{i}".encode() for i in range(4)])
        for topic in topics
    ]


def test_poll_reports_where_each_partition_was_read_to_its_end(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str
) -> None:
    """Once a partition's records are taken, a poll reports its end offset (the offset after its
    last record), so that rotation can tell a quiet partition from one the client has not served."""
    topic = _four_and_three_records(kafka_bootstrap, topic_factory)
    source = _source(kafka_bootstrap, topic, group_id)
    source.wait_for_cluster(stopping=lambda: False)
    source.subscribe(RecordingListener())
    last: dict[TopicPartition, int] = {}
    ends: dict[TopicPartition, int] = {}
    try:
        for poll in _polls(source, lambda: len(ends) >= 2, lambda: f"ends reported: {ends}, records: {last}"):
            for batch in poll.batches:
                last[batch.tp] = batch.offsets[-1]
            ends.update(poll.ends)
    finally:
        source.close()
    assert ends == {TopicPartition(topic, 0): 4, TopicPartition(topic, 1): 3}
    assert last == {TopicPartition(topic, 0): 3, TopicPartition(topic, 1): 2}


def test_the_poll_that_takes_a_partitions_last_record_reports_its_end(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str
) -> None:
    """The end comes with the last record, not with the next fetch: here the broker would hold that
    fetch for 30 s (fetch.wait.max.ms), so a file would finish that much later than its idle timeout."""
    topic = _four_and_three_records(kafka_bootstrap, topic_factory)
    source = _source(kafka_bootstrap, topic, group_id, properties={"fetch.wait.max.ms": 30_000})
    source.subscribe(RecordingListener())
    last = {TopicPartition(topic, 0): 3, TopicPartition(topic, 1): 2}
    ends_with_last_record: dict[TopicPartition, int | None] = {}
    try:
        for poll in _polls(
            source,
            lambda: len(ends_with_last_record) >= 2,
            lambda: f"last records taken: {ends_with_last_record}",
            timeout_s=20.0,
        ):
            for batch in poll.batches:
                if batch.offsets[-1] == last[batch.tp]:
                    ends_with_last_record[batch.tp] = poll.ends.get(batch.tp)
    finally:
        source.close()
    assert ends_with_last_record == {TopicPartition(topic, 0): 4, TopicPartition(topic, 1): 3}


def test_listener_chooses_the_start_offset(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str
) -> None:
    """The offset returned by the listener on assignment is where consumption starts."""
    topic = topic_factory(1)
    produce(kafka_bootstrap, topic, [(0, None, b"{}") for _ in range(10)])
    source = _source(kafka_bootstrap, topic, group_id)
    source.subscribe(RecordingListener(start_at=7))
    try:
        batches = _poll_until(source, 3)
    finally:
        source.close()
    assert [offset for batch in batches for offset in batch.offsets] == [7, 8, 9]


@pytest.mark.parametrize(("reset", "expected"), [("earliest", [0, 1, 2, 3, 4, 5, 6]), ("latest", [5, 6])])
def test_a_partition_with_no_start_begins_where_auto_offset_reset_says(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, reset: str, expected: list[int]
) -> None:
    """Nothing committed, nothing archived: "earliest" reads the records already there, "latest"
    only those produced after the member reached the log's end."""
    topic = topic_factory(1)
    produce(kafka_bootstrap, topic, [(0, None, b"{}") for _ in range(5)])
    source = _source(kafka_bootstrap, topic, group_id, auto_offset_reset=reset)
    source.subscribe(RecordingListener())
    offsets: list[int] = []
    ends: dict[TopicPartition, int] = {}
    try:
        for poll in _polls(source, lambda: bool(ends), lambda: f"no end reported; records: {offsets}"):
            offsets.extend(offset for batch in poll.batches for offset in batch.offsets)
            ends.update(poll.ends)
        produce(kafka_bootstrap, topic, [(0, None, b"{}") for _ in range(2)])
        offsets.extend(offset for batch in _poll_until(source, 2) for offset in batch.offsets)
    finally:
        source.close()
    assert offsets == expected


class TimedListener(RecordingListener):
    """Records when each assignment was handed to the client (just after this call returns)."""

    def __init__(self) -> None:
        super().__init__()
        self.assigned_at: float | None = None

    def assigned(self, committed: Mapping[TopicPartition, int | None]) -> Mapping[TopicPartition, int | None]:
        self.assigned_at = time.monotonic()
        return super().assigned(committed)


def test_a_new_groups_first_records_do_not_wait_for_an_offset_lookup_retry(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str
) -> None:
    """A partition with no committed offset is handed to the client at the log's start, so the
    client does not ask the group for an offset again and, finding none, wait 100 ms (a fixed
    delay in librdkafka) before it looks the start up. The quickest of three new groups is timed,
    so that one slow fetch on a busy machine cannot fail the test; without the fix none is under
    100 ms."""
    topic = topic_factory(1)
    produce(kafka_bootstrap, topic, [(0, None, b"{}") for _ in range(3)])
    waits: list[float] = []
    for attempt in range(3):
        listener = TimedListener()
        source = _source(kafka_bootstrap, topic, f"{group_id}-{attempt}")
        source.subscribe(listener)
        try:
            _poll_until(source, 1)
            assert listener.assigned_at is not None
            waits.append(time.monotonic() - listener.assigned_at)
        finally:
            source.close()
    assert min(waits) < 0.1, f"first records came {waits} s after assignment"


def test_a_new_client_reaches_the_cluster_without_a_pause_between_its_first_connections(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str
) -> None:
    """A new client replaces its bootstrap connection with one to the broker it learns of, and
    librdkafka spaces such connections by half of reconnect.backoff.ms (at least 11 ms): at the
    library's default 100 ms, every start waited 50 ms for its first metadata. The quickest of
    three new clients is timed, so that one slow answer on a busy machine cannot fail the test."""
    topic = topic_factory(1)
    waits: list[float] = []
    for attempt in range(3):
        source = _source(kafka_bootstrap, topic, f"{group_id}-{attempt}")
        try:
            started = time.monotonic()
            source.wait_for_cluster(stopping=lambda: False)
            waits.append(time.monotonic() - started)
        finally:
            source.close()
    assert min(waits) < 0.04, f"the cluster's metadata came after {waits} s"


def test_a_poll_waits_for_records_no_longer_than_its_caller_asks(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str
) -> None:
    """poll_timeout_s bounds a poll's wait on a quiet topic; a caller with a file due sooner by the
    clock shortens it (without that, this poll would wait its 10 s)."""
    topic = topic_factory(1)
    source = _source(kafka_bootstrap, topic, group_id, poll_timeout_s=10.0)
    source.subscribe(RecordingListener())
    try:
        started = time.monotonic()
        poll = source.poll(max_wait_s=0.05)
        waited = time.monotonic() - started
    finally:
        source.close()
    assert poll.batches == []
    assert waited < 2.0, f"the poll waited {waited:.2f} s"


def test_a_poll_returns_the_records_the_client_holds_without_waiting_out_its_timeout(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str
) -> None:
    """Fewer records than poll_max_messages come back as soon as they arrive: the client's batch
    consume would wait its whole timeout (10 s here) for the rest, and the last records before a
    quiet spell with it, delaying their file's idle timeout by as much."""
    topic = topic_factory(1)
    source = _source(kafka_bootstrap, topic, group_id, poll_timeout_s=10.0)
    listener = RecordingListener()
    source.subscribe(listener)
    try:
        ends: dict[TopicPartition, int] = {}
        for poll in _polls(source, lambda: bool(ends), lambda: "the empty partition's end never came"):
            ends.update(poll.ends)
        produce(kafka_bootstrap, topic, [(0, None, b"{}") for _ in range(3)])
        started = time.monotonic()
        batches = _poll_until(source, 3, timeout_s=30.0)
        waited = time.monotonic() - started
    finally:
        source.close()
    assert [offset for batch in batches for offset in batch.offsets] == [0, 1, 2]
    assert waited < 2.0, f"3 records took {waited:.2f} s to come back"


def test_commit_stores_next_offsets_for_the_group(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str
) -> None:
    """commit() is synchronous: the group's committed offsets are visible right after."""
    topic = topic_factory(2)
    produce(kafka_bootstrap, topic, [(p, None, b"{}") for p in (0, 1) for _ in range(5)])
    listener = RecordingListener()
    source = _source(kafka_bootstrap, topic, group_id)
    source.subscribe(listener)
    try:
        _poll_until(source, 10)
        source.commit({TopicPartition(topic, 0): 5, TopicPartition(topic, 1): 3})
        assert source.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)]) == {
            TopicPartition(topic, 0): 5,
            TopicPartition(topic, 1): 3,
        }
    finally:
        source.close()
    assert committed_offsets(kafka_bootstrap, group_id, topic, 2) == {0: 5, 1: 3}
    assert sorted(listener.revoked_partitions) == [TopicPartition(topic, 0), TopicPartition(topic, 1)]


def test_unreachable_cluster_fails_after_bounded_retries(group_id: str) -> None:
    """No broker at the address: a KafkaUnavailableError naming it, within the start-up timeout."""
    source = _source("127.0.0.1:1", "t", group_id, startup_timeout_s=3.0)
    started = time.monotonic()
    with pytest.raises(KafkaUnavailableError, match=r"cannot reach Kafka at 127\.0\.0\.1:1 within 3s"):
        source.wait_for_cluster(stopping=lambda: False)
    assert time.monotonic() - started < 15
    source.close()


def test_missing_topic_is_fatal_before_subscribing(kafka_bootstrap: str, group_id: str) -> None:
    """A listed topic that does not exist stops start-up with its name."""
    source = _source(kafka_bootstrap, "no-such-topic-here", group_id)
    with pytest.raises(KafkaFatalError, match="no-such-topic-here do not exist"):
        source.wait_for_cluster(stopping=lambda: False)
    source.close()
