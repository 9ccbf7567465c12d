"""The producing side of the Kafka adapter: an idempotent producer that counts its deliveries.

Used by the sample producer and for dead letters. Client errors are translated here, once: a
property librdkafka rejects becomes ConfigError, an unreachable cluster KafkaUnavailableError, a
missing topic or a fatal client error KafkaFatalError; a record the client gives up on is counted
as failed, with its error kept for the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import confluent_kafka as ck
import structlog

from consumer.config import KafkaSettings
from consumer.errors import KafkaFatalError, KafkaUnavailableError
from consumer.kafka.client import create_client

# Settings the producer enforces over [kafka.properties]: idempotence gives each partition its
# records exactly once and in order, even when the client retries after a broker hiccup.
ENFORCED: dict[str, str | bool] = {"enable.idempotence": True, "acks": "all"}
ERRORS_KEPT = 5  # delivery errors quoted in the report; the rest are only counted
FULL_QUEUE_WAIT_S = 0.1


@dataclass(slots=True)
class Deliveries:
    """What the broker acknowledged and what the client gave up on."""

    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def on_delivery(self, error: ck.KafkaError | None, _message: ck.Message) -> None:
        if error is None:
            self.delivered += 1
            return
        self.failed += 1
        if len(self.errors) < ERRORS_KEPT:
            self.errors.append(error.str())


class KafkaProducer:
    """An idempotent producer with the settings' bootstrap servers and pass-through properties."""

    def __init__(self, settings: KafkaSettings, defaults: Mapping[str, str | int] | None = None) -> None:
        """`defaults` are client settings [kafka.properties] may still override."""
        self._settings = settings
        self.deliveries = Deliveries()
        self._fatal: ck.KafkaError | None = None
        self._log = structlog.get_logger(component="kafka_producer")
        config: dict[str, Any] = {
            **(defaults or {}),
            **settings.librdkafka_properties(),
            **ENFORCED,
            "bootstrap.servers": settings.bootstrap_servers,
            "error_cb": self._on_error,
        }
        self._producer = create_client(ck.Producer, config, "producer")

    def check_topic(self, topic: str) -> None:
        """Fail fast when the cluster cannot be reached in startup_timeout_s or the topic is missing."""
        timeout_s = self._settings.startup_timeout_s
        try:
            metadata = self._producer.list_topics(topic, timeout=timeout_s)
        except ck.KafkaException as exc:
            raise KafkaUnavailableError(
                f"cannot reach Kafka at {self._settings.bootstrap_servers} within {timeout_s:g}s: "
                f"{exc.args[0]}"
            ) from exc
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise KafkaFatalError(
                f"topic {topic} does not exist on {self._settings.bootstrap_servers} "
                "(create it with `kafka-parquet-archiver create-topics`)"
            )

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, str | bytes | None]] | None = None,
        timestamp_ms: int = 0,
    ) -> None:
        """Queue one record (timestamp 0: the time of sending); when the client's queue is full,
        serve deliveries until there is room."""
        header_list = list(headers) if headers is not None else None  # the client takes a list
        while True:
            self._raise_if_fatal()
            try:
                self._producer.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=header_list,
                    timestamp=timestamp_ms,
                    on_delivery=self.deliveries.on_delivery,
                )
            except BufferError:
                self._producer.poll(FULL_QUEUE_WAIT_S)
                continue
            except ck.KafkaException as exc:
                raise KafkaFatalError(f"cannot produce to {topic}: {exc.args[0]}") from exc
            self._producer.poll(0)
            return

    def serve(self, timeout_s: float) -> None:
        """Handle delivery reports and client events for up to timeout_s seconds."""
        self._producer.poll(max(0.0, timeout_s))
        self._raise_if_fatal()

    def flush(self, timeout_s: float) -> int:
        """Wait up to timeout_s for every queued record; return how many are still undelivered."""
        remaining: int = self._producer.flush(timeout_s)
        return remaining

    def _on_error(self, error: ck.KafkaError) -> None:
        if error.fatal():
            self._fatal = error
        self._log.warning("kafka_client_error", error=error.str(), code=error.name(), fatal=error.fatal())

    def _raise_if_fatal(self) -> None:
        if self._fatal is not None:
            raise KafkaFatalError(f"Kafka producer fatal error: {self._fatal.str()}")
