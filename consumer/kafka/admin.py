"""Cluster administration the commands need: creating topics."""

from __future__ import annotations

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from consumer.config import KafkaSettings
from consumer.errors import KafkaFatalError, KafkaUnavailableError


def create_missing_topics(settings: KafkaSettings, partitions: int, timeout_s: float = 30.0) -> list[str]:
    """Create the listed topics that do not exist yet; return the names created."""
    admin = AdminClient({**settings.librdkafka_properties(), "bootstrap.servers": settings.bootstrap_servers})
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except ck.KafkaException as exc:
        raise KafkaUnavailableError(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {exc.args[0]}"
        ) from exc
    missing = [topic for topic in settings.topics if topic not in existing]
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
