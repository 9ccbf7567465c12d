"""Small, direct Kafka client helpers for tests: create topics, produce, read offsets."""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)], operation_timeout=30
    )
    futures[name].result(timeout=60)  # the admin client must stay alive until the answer arrives
    # The controller has created it; the broker's metadata follows a moment later.
    deadline = time.monotonic() + 30
    while len(getattr(admin.list_topics(name, timeout=10).topics.get(name), "partitions", {})) < partitions:
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {name} was created but its {partitions} partitions never appeared")
        time.sleep(0.05)


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
        count = 0
        for partition, key, value in records:
            while True:
                try:
                    self._producer.produce(
                        topic, value=value, key=key, partition=partition, on_delivery=self._on_delivery
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


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        answer = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {item.partition: item.offset for item in answer}
    finally:
        consumer.close()
