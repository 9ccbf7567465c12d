"""Cluster administration: creating topics (for the commands), reading a topic's record size limit."""

from __future__ import annotations

from collections.abc import Sequence

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType  # type: ignore[attr-defined]  # exported, not in __all__
from confluent_kafka.cimpl import NewTopic

from consumer.config import KafkaSettings
from consumer.errors import KafkaFatalError, KafkaUnavailableError
from consumer.kafka.client import create_client


def _admin(settings: KafkaSettings) -> AdminClient:
    config = {**settings.librdkafka_properties(), "bootstrap.servers": settings.bootstrap_servers}
    return create_client(AdminClient, config, "admin")


def topic_max_message_bytes(settings: KafkaSettings, topic: str) -> int:
    """The topic's `max.message.bytes`: the largest record batch its brokers accept."""
    request = ConfigResource(ResourceType.TOPIC, topic)
    admin = _admin(settings)  # referenced until the answer arrives: destroying it fails the request
    try:
        config = admin.describe_configs([request])[request].result(timeout=settings.startup_timeout_s)
    except TimeoutError as exc:
        raise KafkaUnavailableError(
            f"cannot reach Kafka at {settings.bootstrap_servers} within {settings.startup_timeout_s:g}s"
        ) from exc
    except ck.KafkaException as exc:
        error = exc.args[0]
        if error.code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise KafkaFatalError(
                f"topic {topic} does not exist on {settings.bootstrap_servers} "
                "(create it with `kafka-parquet-archiver create-topics`)"
            ) from exc
        raise KafkaUnavailableError(
            f"cannot read the configuration of topic {topic} on {settings.bootstrap_servers}: {error.str()}"
        ) from exc
    return int(config["max.message.bytes"].value)


def create_missing_topics(
    settings: KafkaSettings, topics: Sequence[str], partitions: int, timeout_s: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = _admin(settings)
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except ck.KafkaException as exc:
        raise KafkaUnavailableError(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {exc.args[0]}"
        ) from exc
    missing = [topic for topic in topics if topic not in existing]
    if not missing:
        return []
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions) for topic in missing])
    for topic, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except ck.KafkaException as exc:
            if exc.args[0].code() != ck.KafkaError.TOPIC_ALREADY_EXISTS:
                raise KafkaFatalError(f"cannot create topic {topic}: {exc.args[0].str()}") from exc
    return missing
