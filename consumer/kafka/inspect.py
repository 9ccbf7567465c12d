"""Read-only inspection of the configured topics for `verify`: watermarks, committed offsets, records.

The client never joins the group and never commits: offsets are read with `committed()` under the
group id, records with `assign()` at explicit offsets. Records leave this module as plain
TopicRecord tuples, a poll batch at a time; client errors become KafkaUnavailableError (the
cluster did not answer in time) or KafkaFatalError (it answered with an error).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from typing import Any, cast

import confluent_kafka as ck

from consumer.config import KafkaSettings
from consumer.errors import KafkaFatalError, KafkaUnavailableError
from consumer.kafka.client import consume_ready, create_client
from consumer.kafka.headers import headers_of
from consumer.records import TopicPartition, UnreadableHeaders
from consumer.verify.model import ClusterView, PartitionState, TopicRecord

READ_BATCH = 1_000
POLL_S = 1.0
# The broker holds a fetch that finds nothing new for up to fetch.wait.max.ms (librdkafka's default
# 500 ms): a read past a partition's last record waited that long for the partition's end, and the
# next partition's first fetch waited behind it. The inspector reads ranges that exist; it never
# waits for new records.
FETCH_WAIT_MAX_MS = 10
UNREACHABLE = frozenset({ck.KafkaError._TRANSPORT, ck.KafkaError._TIMED_OUT, ck.KafkaError._ALL_BROKERS_DOWN})


class KafkaInspector:
    """Implements verify's TopicInspector with one consumer that is never subscribed."""

    def __init__(self, settings: KafkaSettings, timeout_s: float = 30.0) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._consumer = create_client(
            ck.Consumer,
            {
                **settings.librdkafka_properties(),
                "bootstrap.servers": settings.bootstrap_servers,
                "group.id": settings.group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": FETCH_WAIT_MAX_MS,
            },
            "inspector",
        )

    def describe(self) -> ClusterView:
        """Watermarks and committed offsets of every partition of the configured topics."""
        topics, missing = self._topics()
        partitions = [TopicPartition(topic, p) for topic, ids in sorted(topics.items()) for p in ids]
        committed = self._committed(partitions)
        states = [PartitionState(tp, *self._watermarks(tp), committed.get(tp)) for tp in partitions]
        return ClusterView(states, missing)

    def _topics(self) -> tuple[dict[str, list[int]], list[str]]:
        """The partition ids of the configured topics found on the cluster, and the listed ones missing."""
        try:
            metadata = self._consumer.list_topics(timeout=self._timeout_s)
        except ck.KafkaException as exc:
            raise self._unreachable("list topics", exc.args[0]) from exc
        existing: dict[str, list[int]] = {
            name: sorted(topic.partitions) for name, topic in metadata.topics.items() if topic.error is None
        }
        pattern = self._settings.topic_pattern
        if pattern is not None:  # subscribed as "^pattern" by the daemon; internal topics never match
            regex = re.compile(pattern if pattern.startswith("^") else f"^{pattern}")
            chosen = [name for name in existing if regex.match(name) and not name.startswith("__")]
            return {name: existing[name] for name in chosen}, []
        listed = self._settings.topics
        missing = [name for name in listed if name not in existing]
        return {name: existing[name] for name in listed if name in existing}, missing

    def _watermarks(self, tp: TopicPartition) -> tuple[int, int]:
        try:
            answer = self._consumer.get_watermark_offsets(
                ck.TopicPartition(tp.topic, tp.partition), timeout=self._timeout_s, cached=False
            )
        except ck.KafkaException as exc:
            raise self._unreachable(f"read the watermarks of {tp}", exc.args[0]) from exc
        if answer is None:
            raise KafkaUnavailableError(f"no watermarks for {tp} from {self._settings.bootstrap_servers}")
        low, high = answer
        return int(low), int(high)

    def _committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        if not partitions:
            return {}
        request = [ck.TopicPartition(tp.topic, tp.partition) for tp in partitions]
        try:
            answer = self._consumer.committed(request, timeout=self._timeout_s)
        except ck.KafkaException as exc:
            raise self._unreachable(f"read group {self._settings.group_id}'s offsets", exc.args[0]) from exc
        failed = [f"{item.topic}[{item.partition}]: {item.error}" for item in answer if item.error]
        if failed:
            raise KafkaFatalError(f"cannot read committed offsets: {'; '.join(failed)}")
        return {
            TopicPartition(item.topic, item.partition): item.offset for item in answer if item.offset >= 0
        }

    def read(self, tp: TopicPartition, start: int, end: int, deadline: float) -> Iterator[TopicRecord]:
        """The records of [start, end) in offset order, until the partition's end if that comes first."""
        if start >= end:
            return
        self._consumer.assign([ck.TopicPartition(tp.topic, tp.partition, start)])
        try:
            while True:
                batch, finished = self._next_batch(tp, start, end, deadline)
                yield from batch
                if finished:
                    return
        finally:
            self._consumer.unassign()

    def _next_batch(
        self, tp: TopicPartition, start: int, end: int, deadline: float
    ) -> tuple[list[TopicRecord], bool]:
        """One poll as plain records (no Message object survives it); True once the range is read."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise KafkaUnavailableError(f"reading {tp} offsets {start}-{end - 1} did not finish in time")
        records: list[TopicRecord] = []
        for message in consume_ready(self._consumer, READ_BATCH, min(POLL_S, remaining)):
            error = message.error()
            if error is not None:
                if error.code() == ck.KafkaError._PARTITION_EOF:
                    return records, True
                self._raise_unless_transient(error)
                continue
            offset = cast(int, message.offset())
            if offset >= end:
                return records, True
            headers = headers_of(message)
            if isinstance(headers, UnreadableHeaders):
                headers = None
            records.append(TopicRecord(offset, message.key(), message.value(), _timestamp(message), headers))
            if offset == end - 1:  # the range's last record: the partition's end may be a fetch away
                return records, True
        return records, False

    def _raise_unless_transient(self, error: ck.KafkaError) -> None:
        if error.fatal() or not (error.retriable() or error.code() in UNREACHABLE):
            raise KafkaFatalError(f"Kafka consumer error: {error.str()}")

    def _unreachable(self, action: str, error: ck.KafkaError) -> KafkaUnavailableError | KafkaFatalError:
        if error.code() in UNREACHABLE or error.retriable():
            return KafkaUnavailableError(
                f"cannot {action} at {self._settings.bootstrap_servers}: {error.str()}"
            )
        return KafkaFatalError(f"cannot {action}: {error.str()}")

    def close(self) -> None:
        """Release the client (it never joined the group, so nothing is revoked)."""
        self._consumer.close()


def _timestamp(message: Any) -> int | None:
    kind, timestamp = message.timestamp()
    return None if kind == ck.TIMESTAMP_NOT_AVAILABLE else int(timestamp)
