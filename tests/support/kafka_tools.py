"""Small, direct Kafka client helpers for tests: create topics, produce, read offsets."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic


def create_topic(bootstrap: str, name: str, partitions: int, config: dict[str, str] | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=30,
    )
    futures[name].result(timeout=60)  # the admin client must stay alive until the answer arrives
    wait_for_topic(bootstrap, name, partitions)


def wait_for_topic(bootstrap: str, name: str, partitions: int) -> None:
    """Wait (with a deadline) until the broker's metadata shows the topic's partitions."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + 30
    while len(getattr(admin.list_topics(name, timeout=10).topics.get(name), "partitions", {})) < partitions:
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {name} was created but its {partitions} partitions never appeared")
        time.sleep(0.05)


# (partition, key, value, headers): headers as (key, value) pairs in order, or None for none.
HeadedRecord = tuple[int, bytes | None, bytes | None, list[tuple[str, str | bytes | None]] | None]


class RecordWriter:
    """One idempotent producer for many sends; each send waits until its records are delivered."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = Producer(
            {"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True}
        )
        self._failures: list[str] = []

    def _on_delivery(self, error: object, _message: object) -> None:
        if error is not None:
            self._failures.append(str(error))

    def send(self, topic: str, records: Iterable[tuple[int, bytes | None, bytes | None]]) -> int:
        """Produce (partition, key, value) triples and wait for delivery; return how many were sent."""
        return self.send_with_headers(topic, ((*record, None) for record in records))

    def send_with_headers(self, topic: str, records: Iterable[HeadedRecord]) -> int:
        """Produce (partition, key, value, headers) and wait for delivery; return how many were sent."""
        count = 0
        for partition, key, value, headers in records:
            while True:
                try:
                    self._producer.produce(
                        topic,
                        value=value,
                        key=key,
                        partition=partition,
                        headers=headers,
                        on_delivery=self._on_delivery,
                    )
                    break
                except BufferError:
                    self._producer.poll(0.1)
            count += 1
        remaining = self._producer.flush(60)
        assert remaining == 0, f"{remaining} records were not delivered"
        assert not self._failures, self._failures[:5]
        return count


def produce(bootstrap: str, topic: str, records: Iterable[tuple[int, bytes | None, bytes | None]]) -> int:
    """Produce (partition, key, value) triples with a fresh producer and wait for delivery."""
    return RecordWriter(bootstrap).send(topic, records)


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "offset-probe"})
    try:
        return {
            partition: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
            for partition in range(partitions)
        }
    finally:
        consumer.close()


def produce_dated_to_a_lenient_topic(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes, int]]
) -> None:
    """Create a one-partition topic that keeps any timestamp (`message.timestamp.after.max.ms` at its
    largest; brokers refuse records dated over an hour ahead by default), then produce (value,
    timestamp in ms, 0 for now) to it and wait until every record is delivered."""
    create_topic(bootstrap, topic, 1, {"message.timestamp.after.max.ms": str(2**63 - 1)})
    producer = Producer({"bootstrap.servers": bootstrap})
    failures: list[str] = []
    for value, timestamp_ms in records:
        producer.produce(
            topic,
            value,
            partition=0,
            timestamp=timestamp_ms,
            on_delivery=lambda error, _message: failures.append(str(error)) if error else None,
        )
    assert producer.flush(30) == 0, f"records of {topic} still undelivered"
    assert failures == [], failures


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        answer = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {item.partition: item.offset for item in answer}
    finally:
        consumer.close()


@dataclass(frozen=True)
class ReadRecord:
    """One record as a reader of the topic sees it."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]  # the headers that have a value, by key (the last of a repeated key)
    timestamp_ms: int
    header_pairs: list[tuple[str, bytes | None]]  # every header in order (keys may repeat)


def fetch_messages(
    bootstrap: str, topic: str, ends: dict[int, int], timeout_s: float = 60.0
) -> list[Message]:
    """The messages of the given partitions of a topic, as the client gives them, from the start
    until each has reached its end offset in `ends` (read with a deadline)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}"})
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in ends])
    messages: list[Message] = []
    reached = dict.fromkeys(ends, 0)
    deadline = time.monotonic() + timeout_s
    try:
        while any(reached[partition] < ends[partition] for partition in reached):
            assert time.monotonic() < deadline, f"read {len(messages)} messages of {topic}; ends {ends}"
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                assert message.error() is None, message.error()
                partition, offset = message.partition(), message.offset()
                assert partition is not None
                assert offset is not None
                reached[partition] = offset + 1
                messages.append(message)
    finally:
        consumer.close()
    return messages


def read_topic(bootstrap: str, topic: str, partitions: int, timeout_s: float = 60.0) -> list[ReadRecord]:
    """Every record of the topic, from the start to its end offsets (read with a deadline)."""
    records: list[ReadRecord] = []
    for message in fetch_messages(bootstrap, topic, end_offsets(bootstrap, topic, partitions), timeout_s):
        pairs = cast(list[tuple[str, bytes | None]], message.headers() or [])
        headers = {name: value for name, value in pairs if value is not None}
        records.append(
            ReadRecord(
                cast(int, message.partition()),
                cast(int, message.offset()),
                message.key(),
                message.value(),
                headers,
                message.timestamp()[1],
                pairs,
            )
        )
    return records
