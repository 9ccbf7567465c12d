"""The consumer-group member: builds the consumer, polls batches, relays rebalances, commits.

Client errors are translated here, once: fatal ones become KafkaFatalError, an unreachable cluster
at start-up becomes KafkaUnavailableError, everything transient is logged and left to librdkafka's
own retries.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, cast

import confluent_kafka as ck
import orjson
import structlog

from consumer.config import KafkaSettings
from consumer.errors import CommitRefusedError, KafkaFatalError, KafkaUnavailableError
from consumer.kafka.client import consume_ready, create_client
from consumer.kafka.headers import headers_of
from consumer.records import Poll, RawBatch, TopicPartition

# Client defaults the user may still override through [kafka.properties]. The prefetch queue is
# kept small (its memory counts next to the archiver's own budget: two fetches, 4 MiB; 8 MiB cost
# 10 MiB more RSS at the same speed, docs/operations.md) and fetches are small, but the queue is
# refilled at once when the archiver takes from it: librdkafka's own default waits a whole second
# (fetch.queue.backoff.ms) whenever the queue was full, which starves a busy consumer.
# A new client may open a connection to "any" broker only once per half of reconnect.backoff.ms
# (at least 11 ms; librdkafka's sparse connections). At the default 100 ms, replacing the
# bootstrap connection with the broker's own made every start wait 50 ms for its first metadata;
# 20 ms keeps the wait at 11 ms, and reconnects after an outage still back off exponentially.
CLIENT_DEFAULTS: dict[str, str | int] = {
    "queued.max.messages.kbytes": 4096,
    "fetch.queue.backoff.ms": 10,
    "fetch.max.bytes": 2 * 1024 * 1024,
    "max.partition.fetch.bytes": 256 * 1024,
    "session.timeout.ms": 45000,
    "reconnect.backoff.ms": 20,
}
TRANSIENT_COMMIT_ERRORS = frozenset(
    {
        ck.KafkaError.REBALANCE_IN_PROGRESS,
        ck.KafkaError.ILLEGAL_GENERATION,
        ck.KafkaError.UNKNOWN_MEMBER_ID,
        ck.KafkaError.COORDINATOR_NOT_AVAILABLE,
        ck.KafkaError.NOT_COORDINATOR,
        ck.KafkaError.REQUEST_TIMED_OUT,
        ck.KafkaError._TRANSPORT,
        ck.KafkaError._TIMED_OUT,
        ck.KafkaError._WAIT_COORD,
        ck.KafkaError._STATE,
    }
)
MISSING_TOPIC_ERRORS = frozenset({ck.KafkaError.UNKNOWN_TOPIC_OR_PART, ck.KafkaError._UNKNOWN_TOPIC})


def _unset(_value: Any) -> None:
    raise AssertionError("no partition batch is current")


class RebalanceListener(Protocol):
    """Receives partition ownership changes; called from inside poll()."""

    def assigned(self, committed: Mapping[TopicPartition, int | None]) -> Mapping[TopicPartition, int | None]:
        """Given each new partition's committed offset, return where to start (None: the reset policy)."""
        ...

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        """Finish and commit these partitions' data; they are still owned during the call."""
        ...

    def lost(self, partitions: Sequence[TopicPartition]) -> None:
        """Drop these partitions' unfinished data; they may already belong to another member."""
        ...


class KafkaSource:
    """A consumer-group member that polls raw batches and commits explicit offsets."""

    def __init__(
        self,
        settings: KafkaSettings,
        statistics_interval_s: float,
        on_lag: Callable[[dict[TopicPartition, int]], None],
        read_headers: bool = False,
    ) -> None:
        self._settings = settings
        self._read_headers = read_headers
        self._listener: RebalanceListener | None = None
        self._on_lag = on_lag
        self._log = structlog.get_logger(component="kafka")
        self._fatal: ck.KafkaError | None = None
        self._consumer = create_client(ck.Consumer, self._client_config(statistics_interval_s), "consumer")

    def _client_config(self, statistics_interval_s: float) -> dict[str, Any]:
        settings = self._settings
        return {
            **CLIENT_DEFAULTS,
            **settings.librdkafka_properties(),
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": settings.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "partition.assignment.strategy": "cooperative-sticky",
            "enable.partition.eof": True,  # a partition read to its end may be idle (rotation.py)
            "auto.offset.reset": settings.auto_offset_reset,
            "statistics.interval.ms": max(1000, int(statistics_interval_s * 1000)),
            "error_cb": self._on_error,
            "stats_cb": self._on_statistics,
        }

    # --- start-up ---------------------------------------------------------------------------------

    def wait_for_cluster(
        self, stopping: Callable[[], bool], clock: Callable[[], float] = time.monotonic
    ) -> bool:
        """Fetch cluster metadata with bounded retries; check that listed topics exist.

        Returns False when `stopping` turned true while retrying (a shutdown during start-up).
        """
        deadline = clock() + self._settings.startup_timeout_s
        backoff_s = 0.5
        attempt = 0
        while True:
            attempt += 1
            try:
                metadata = self._consumer.list_topics(timeout=min(5.0, max(0.5, deadline - clock())))
                break
            except ck.KafkaException as exc:
                if stopping():
                    return False
                if clock() + backoff_s >= deadline:
                    raise KafkaUnavailableError(
                        f"cannot reach Kafka at {self._settings.bootstrap_servers} within "
                        f"{self._settings.startup_timeout_s:g}s ({attempt} attempts): {exc.args[0]}"
                    ) from exc
                self._log.warning("kafka_unreachable", attempt=attempt, retry_in_s=backoff_s, error=str(exc))
                time.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 8.0)
        missing = sorted(set(self._settings.topics) - set(metadata.topics))
        if missing:
            raise KafkaFatalError(
                f"topic(s) {', '.join(missing)} do not exist on {self._settings.bootstrap_servers}"
            )
        return True

    def subscribe(self, listener: RebalanceListener) -> None:
        """Join the group; ownership changes go to the listener from inside poll()."""
        self._listener = listener
        pattern = self._settings.topic_pattern
        topics = (
            [pattern if pattern.startswith("^") else f"^{pattern}"]
            if pattern
            else list(self._settings.topics)
        )
        self._consumer.subscribe(
            topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    # --- polling ----------------------------------------------------------------------------------

    def poll(self, max_wait_s: float = math.inf) -> Poll:
        """Up to poll_max_messages, as soon as the client holds any, waiting at most poll_timeout_s
        (or `max_wait_s`, if sooner) when it holds none: records grouped by partition as plain
        values, and the partitions the client read to their end."""
        settings = self._settings
        messages = consume_ready(
            self._consumer, settings.poll_max_messages, min(settings.poll_timeout_s, max_wait_s)
        )
        self._raise_if_fatal()
        return self._by_partition(messages)

    def _by_partition(self, messages: list[ck.Message]) -> Poll:
        """Copy the messages' fields into one RawBatch per partition (the hottest loop of all).

        Messages arrive in runs of one partition, so the current batch's appenders are kept at
        hand, and each message's partition, then topic, is compared with the run's (cheaper than a
        key tuple per message). A message without an error always carries its topic, partition and
        offset, and so does the event saying the client reached a partition's end (its offset is
        the end offset). Headers are copied only when asked for: the client builds them as Python
        objects on demand.
        """
        batches: dict[tuple[Any, Any], RawBatch] = {}
        ends: dict[TopicPartition, int] = {}
        topic: Any = None
        partition: Any = None
        add_offset: Callable[[Any], None] = _unset
        add_timestamp: Callable[[Any], None] = _unset
        add_key: Callable[[Any], None] = _unset
        add_value: Callable[[Any], None] = _unset
        add_headers: Callable[[Any], None] | None = None
        read_headers = self._read_headers
        not_available = ck.TIMESTAMP_NOT_AVAILABLE
        end_of_partition = ck.KafkaError._PARTITION_EOF
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == end_of_partition:
                    tp, end_offset = _end_of(message)
                    ends[tp] = end_offset
                else:
                    self._on_message_error(error)
                continue
            if message.partition() != partition or message.topic() != topic:
                topic, partition = message.topic(), message.partition()
                batch = batches.get((topic, partition)) or batches.setdefault(
                    (topic, partition),
                    RawBatch(TopicPartition(topic, partition), headers=[] if read_headers else None),
                )
                add_offset, add_timestamp = batch.offsets.append, batch.timestamps_ms.append
                add_key, add_value = batch.keys.append, batch.values.append
                add_headers = batch.headers.append if batch.headers is not None else None
            add_offset(message.offset())
            kind, timestamp = message.timestamp()
            add_timestamp(None if kind == not_available else timestamp)
            add_key(message.key())
            add_value(message.value())
            if add_headers is not None:
                add_headers(headers_of(message))
        for batch in batches.values():
            self._note_end(batch, ends)
        return Poll(list(batches.values()), ends)

    def _note_end(self, batch: RawBatch, ends: dict[TopicPartition, int]) -> None:
        """Report the batch's partition as read to its end when its last record is the last one the
        broker held at the client's latest fetch from it (the high watermark the client keeps).

        The end-of-partition event says the same one fetch later: the broker holds a fetch that
        finds nothing new for up to `fetch.wait.max.ms` (500 ms by default). The event still
        covers a partition whose end is a transaction marker rather than a record.
        """
        tp = batch.tp
        try:
            _, high = self._consumer.get_watermark_offsets(
                ck.TopicPartition(tp.topic, tp.partition), cached=True
            )
        except ck.KafkaException:
            return  # nothing known for the partition: its end-of-partition event will tell
        if high == batch.offsets[-1] + 1:
            ends[tp] = max(high, ends.get(tp, high))

    def _on_message_error(self, error: ck.KafkaError) -> None:
        if error.fatal() or error.code() in MISSING_TOPIC_ERRORS:
            raise KafkaFatalError(f"Kafka consumer error: {error.str()}")
        self._log.warning("kafka_consume_error", error=error.str(), code=error.name())

    def _raise_if_fatal(self) -> None:
        if self._fatal is not None:
            raise KafkaFatalError(f"Kafka client fatal error: {self._fatal.str()}")

    # --- offsets ------------------------------------------------------------------------------------

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Synchronously commit the given next-offsets; raise CommitRefusedError if Kafka refused."""
        partitions = [ck.TopicPartition(tp.topic, tp.partition, offset) for tp, offset in offsets.items()]
        try:
            results = self._consumer.commit(offsets=partitions, asynchronous=False)
        except ck.KafkaException as exc:
            self._raise_on_fatal_commit(exc.args[0])
            raise CommitRefusedError(str(exc.args[0])) from exc
        failed = [
            f"{result.topic}[{result.partition}]: {result.error}" for result in results or [] if result.error
        ]
        if failed:
            raise CommitRefusedError("; ".join(failed))

    def _raise_on_fatal_commit(self, error: ck.KafkaError) -> None:
        if error.fatal() or (error.code() not in TRANSIENT_COMMIT_ERRORS and not error.retriable()):
            raise KafkaFatalError(f"offset commit failed: {error.str()}")

    def committed(
        self, partitions: Sequence[TopicPartition], timeout_s: float = 30.0
    ) -> dict[TopicPartition, int | None]:
        """The group's committed next-offset per partition (None when nothing was committed)."""
        request = [ck.TopicPartition(tp.topic, tp.partition) for tp in partitions]
        try:
            answer = self._consumer.committed(request, timeout=timeout_s)
        except ck.KafkaException as exc:
            raise KafkaFatalError(f"cannot read committed offsets: {exc.args[0]}") from exc
        return {
            TopicPartition(item.topic, item.partition): item.offset if item.offset >= 0 else None
            for item in answer
        }

    def close(self) -> None:
        """Leave the group (revoking what is still assigned) and release the client."""
        self._consumer.close()

    # --- callbacks (run inside consume) -----------------------------------------------------------------

    def _on_assign(self, consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        assigned = [TopicPartition(item.topic, item.partition) for item in partitions]
        starts = self._subscriber().assigned(self.committed(assigned))
        consumer.incremental_assign(
            [
                ck.TopicPartition(tp.topic, tp.partition, self._reset_offset if start is None else start)
                for tp, start in starts.items()
            ]
        )

    @property
    def _reset_offset(self) -> int:
        """Where a partition with nothing committed and nothing archived starts: the log end that
        auto_offset_reset names, given to the client directly. (Told to start at the committed
        offset instead, the client would ask the group for it again, and on finding none wait
        100 ms before it looks the log end up.)"""
        return ck.OFFSET_BEGINNING if self._settings.auto_offset_reset == "earliest" else ck.OFFSET_END

    def _on_revoke(self, _consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        self._subscriber().revoked([TopicPartition(item.topic, item.partition) for item in partitions])

    def _on_lost(self, _consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        self._subscriber().lost([TopicPartition(item.topic, item.partition) for item in partitions])

    def _subscriber(self) -> RebalanceListener:
        if self._listener is None:
            raise KafkaFatalError("a rebalance arrived before subscribe()")
        return self._listener

    def _on_error(self, error: ck.KafkaError) -> None:
        if error.fatal():
            self._fatal = error
        self._log.warning("kafka_client_error", error=error.str(), code=error.name(), fatal=error.fatal())

    def _on_statistics(self, document: str) -> None:
        self._on_lag(parse_lag(orjson.loads(document)))


def _end_of(message: ck.Message) -> tuple[TopicPartition, int]:
    """The partition an end-of-partition event is about, and its end offset (the event has all three)."""
    tp = TopicPartition(cast(str, message.topic()), cast(int, message.partition()))
    return tp, cast(int, message.offset())


def parse_lag(statistics: Mapping[str, Any]) -> dict[TopicPartition, int]:
    """Per assigned partition: high watermark minus committed offset, from librdkafka statistics."""
    lag: dict[TopicPartition, int] = {}
    for topic, topic_stats in statistics.get("topics", {}).items():
        for partition, partition_stats in topic_stats.get("partitions", {}).items():
            if partition == "-1" or partition_stats.get("fetch_state") == "none":
                continue
            high = partition_stats.get("hi_offset", -1)
            committed = partition_stats.get("committed_offset", -1)
            if high >= 0:
                lag[TopicPartition(topic, int(partition))] = high - max(
                    committed, partition_stats.get("lo_offset", 0)
                )
    return lag
