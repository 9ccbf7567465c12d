"""The benchmark's own broker: start and stop it, produce a workload once, watch a group's commits."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import TracebackType

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from bench.workloads import WORKLOADS

# Errors while the group's coordinator moves or loads its offsets: asking again later succeeds.
COORDINATOR_MOVING = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
)

REPO = Path(__file__).resolve().parent.parent
PARTITIONS = 6
BENCH_PORT = os.environ.get("BENCH_KAFKA_PORT", "29092")


def _kafka_local(command: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "KAFKA_LOCAL_PORT": BENCH_PORT}
    script = [sys.executable, str(REPO / "scripts" / "kafka-local"), command]
    return subprocess.run(script, env=env, capture_output=command == "status", check=command != "status")


def start_broker() -> tuple[str, bool]:
    """Start the broker unless it runs; return its address and whether this call started it."""
    running = _kafka_local("status").returncode == 0
    if not running:
        _kafka_local("start")
    return f"127.0.0.1:{BENCH_PORT}", not running


def stop_broker() -> None:
    _kafka_local("stop")


def produce(bootstrap: str, workload: str, count: int, partitions: int = PARTITIONS) -> tuple[str, int]:
    """Write `count` records of a workload round-robin into a new topic; return it and the value bytes."""
    topic = f"bench-{workload}-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=60)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000, "compression.type": "lz4"}
    )
    total = 0
    for index, value in enumerate(WORKLOADS[workload].values(count)):
        total += len(value)
        while True:
            try:
                producer.produce(topic, value, partition=index % partitions)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120) != 0:
        raise RuntimeError("records were not delivered")
    return topic, total


class CommitWatcher:
    """Reads a group's committed offsets on a topic whose end offsets no longer move.

    One client for the whole wait, so that reading every 20 ms costs the measured system little.
    """

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        count = len(self._consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        self._partitions = [TopicPartition(topic, p) for p in range(count)]
        self._ends = [self._consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self._partitions]
        self._last = 0

    def committed(self) -> int:
        """How many records the group has committed (offsets without a commit count as 0).

        While the group's coordinator moves or loads, the answer of the previous call stands.
        """
        try:
            committed = self._consumer.committed(self._partitions, timeout=10)
        except KafkaException as exc:
            if exc.args[0].code() not in COORDINATOR_MOVING:
                raise
            return self._last
        self._last = sum(max(item.offset, 0) for item in committed)
        return self._last

    def total(self) -> int:
        return sum(self._ends)

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> CommitWatcher:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
