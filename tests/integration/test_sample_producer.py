"""The sample producer against the real broker: counts, content, determinism, pacing, stopping."""

from __future__ import annotations

import io
import itertools
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable

import orjson
import pytest
from confluent_kafka import Consumer

from consumer.config import KafkaSettings, Settings
from consumer.errors import ExitCode
from consumer.sample import SampleEvents, produce_sample
from tests.support.kafka_tools import end_offsets

Record = tuple[int, bytes, bytes]  # partition, key, value


def _settings(bootstrap: str, topic: str) -> Settings:
    return Settings(kafka=KafkaSettings(bootstrap_servers=bootstrap, topics=(topic,)))


def _consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0) -> list[Record]:
    """Every record of the topic, read from the start until `expected` arrived or the deadline passed."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    records: list[Record] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout_s
        while len(records) < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                assert message.error() is None, message.error()
                partition, key, value = message.partition(), message.key(), message.value()
                assert partition is not None
                assert key is not None  # every sample is keyed by its user
                assert value is not None
                records.append((partition, key, value))
    finally:
        consumer.close()
    return records


def _by_partition(records: list[Record]) -> dict[int, list[tuple[bytes, bytes]]]:
    grouped: dict[int, list[tuple[bytes, bytes]]] = {}
    for partition, key, value in records:
        grouped.setdefault(partition, []).append((key, value))
    return grouped


class TestProduceSample:
    def test_produces_count_json_objects(
        self, kafka_bootstrap: str, topic_factory: Callable[[int], str]
    ) -> None:
        """count=500 at rate 0 delivers 500 JSON objects, keyed by user, into the configured topic."""
        topic = topic_factory(3)
        out = io.StringIO()
        code = produce_sample(_settings(kafka_bootstrap, topic), None, 0, 500, 42, out)
        assert code == ExitCode.OK
        assert "500 delivered, 0 failed" in out.getvalue()
        records = _consume_all(kafka_bootstrap, topic, 500)
        assert len(records) == 500
        objects = [orjson.loads(value) for _, _, value in records]
        assert all(isinstance(item, dict) for item in objects)
        assert sorted(item["sequence"] for item in objects) == list(range(1, 501))
        assert all(
            key == str(item["user_id"]).encode() for (_, key, _), item in zip(records, objects, strict=True)
        )
        assert len({item["event_type"] for item in objects}) >= 5

    def test_records_are_the_seeds_events(
        self, kafka_bootstrap: str, topic_factory: Callable[[int], str]
    ) -> None:
        """What arrives is exactly the seed's event stream, in order within each partition."""
        topic = topic_factory(2)
        assert (
            produce_sample(_settings(kafka_bootstrap, topic), None, 0, 300, 7, io.StringIO()) == ExitCode.OK
        )
        arrived = _consume_all(kafka_bootstrap, topic, 300)
        expected = list(itertools.islice(SampleEvents(7), 300))
        by_partition = _by_partition(arrived)
        assert sorted(pair for pairs in by_partition.values() for pair in pairs) == sorted(expected)
        for pairs in by_partition.values():
            sequences = [orjson.loads(value)["sequence"] for _, value in pairs]
            assert sequences == sorted(sequences)

    def test_same_seed_same_records_other_seed_other_records(
        self, kafka_bootstrap: str, topic_factory: Callable[[int], str]
    ) -> None:
        """Two runs with one seed produce identical partitions; another seed produces other records."""
        runs = {}
        for name, seed in (("first", 3), ("again", 3), ("other", 4)):
            topic = topic_factory(2)
            assert produce_sample(_settings(kafka_bootstrap, topic), topic, 0, 200, seed, io.StringIO()) == 0
            runs[name] = _by_partition(_consume_all(kafka_bootstrap, topic, 200))
        assert runs["first"] == runs["again"]
        assert runs["first"] != runs["other"]

    def test_rate_limits_the_pace(self, kafka_bootstrap: str, topic_factory: Callable[[int], str]) -> None:
        """200 records at 400 per second take at least the 0.5 s the schedule spreads them over."""
        topic = topic_factory(1)
        started = time.monotonic()
        code = produce_sample(_settings(kafka_bootstrap, topic), None, 400, 200, 1, io.StringIO())
        elapsed = time.monotonic() - started
        assert code == ExitCode.OK
        assert elapsed >= 199 / 400
        assert elapsed < 10
        assert end_offsets(kafka_bootstrap, topic, 1) == {0: 200}

    def test_explicit_topic_wins_over_the_configured_one(
        self, kafka_bootstrap: str, topic_factory: Callable[[int], str]
    ) -> None:
        """--topic sends to that topic instead of the first of kafka.topics."""
        configured, chosen = topic_factory(1), topic_factory(1)
        code = produce_sample(_settings(kafka_bootstrap, configured), chosen, 0, 20, 1, io.StringIO())
        assert code == ExitCode.OK
        assert end_offsets(kafka_bootstrap, chosen, 1) == {0: 20}
        assert end_offsets(kafka_bootstrap, configured, 1) == {0: 0}

    def test_missing_topic_is_a_fatal_error(
        self, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A topic that does not exist fails fast with exit code 1 and a line naming it."""
        topic = f"missing-{uuid.uuid4().hex[:8]}"
        code = produce_sample(_settings(kafka_bootstrap, topic), None, 0, 5, 1, io.StringIO())
        assert code == ExitCode.FATAL
        assert f"topic {topic} does not exist" in capsys.readouterr().err

    def test_negative_rate_is_a_usage_error(self, kafka_bootstrap: str) -> None:
        """A negative rate is refused before connecting."""
        assert (
            produce_sample(_settings(kafka_bootstrap, "t"), None, -1, 5, 1, io.StringIO()) == ExitCode.USAGE
        )

    def test_a_property_librdkafka_rejects_is_a_config_error(self, kafka_bootstrap: str) -> None:
        """An unknown pass-through property stops the producer with the configuration exit code."""
        kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topics=("t",), properties={"no.such": "1"})
        assert produce_sample(Settings(kafka=kafka), None, 0, 5, 1, io.StringIO()) == ExitCode.CONFIG

    def test_a_pattern_subscription_needs_an_explicit_topic(self, kafka_bootstrap: str) -> None:
        """With kafka.topic_pattern there is no first topic: without --topic it is a usage error."""
        settings = Settings(kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_pattern="events.*"))
        assert produce_sample(settings, None, 0, 5, 1, io.StringIO()) == ExitCode.USAGE

    def test_unbounded_run_stops_on_sigint_and_flushes(
        self, kafka_bootstrap: str, topic_factory: Callable[[int], str]
    ) -> None:
        """count=None runs until SIGINT, then flushes what it queued and exits 0."""
        topic = topic_factory(1)

        def interrupt_once_producing() -> None:
            # Records in the topic prove the producer runs with its handler installed; without
            # them (it failed), no signal is sent, so the test run itself is never interrupted.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if end_offsets(kafka_bootstrap, topic, 1)[0] >= 20:
                    os.kill(os.getpid(), signal.SIGINT)
                    return
                time.sleep(0.1)

        interrupter = threading.Thread(target=interrupt_once_producing, daemon=True)
        out = io.StringIO()
        interrupter.start()
        code = produce_sample(_settings(kafka_bootstrap, topic), None, 200, None, 1, out)
        interrupter.join(timeout=10)
        assert code == ExitCode.OK
        produced = end_offsets(kafka_bootstrap, topic, 1)[0]
        assert produced >= 20
        assert f"produced {produced} records to {topic}: {produced} delivered, 0 failed" in out.getvalue()
