"""What every Kafka client of the archiver shares: librdkafka's log lines as structlog events, and
the translation of a client that cannot be created into the archiver's errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import confluent_kafka as ck
import structlog

from consumer.errors import ArchiverError, ConfigError, KafkaFatalError

Client = TypeVar("Client")
# librdkafka warns about properties meant for the other kind of client; one settings table
# serves the consumer and the producer, so these lines are expected.
OTHER_CLIENT_PROPERTY = (
    "is a consumer property and will be ignored",
    "is a producer property and will be ignored",
)


class ClientLogger(logging.Logger):
    """Routes librdkafka's log lines into structlog events instead of stderr."""

    def __init__(self, name: str) -> None:
        super().__init__("librdkafka")
        self._events = structlog.get_logger(component=name)

    def handle(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        level = logging.DEBUG if any(text in message for text in OTHER_CLIENT_PROPERTY) else record.levelno
        self._events.log(level, "kafka_client_log", message=message)


def create_client(factory: Callable[..., Client], config: dict[str, Any], name: str) -> Client:
    """Create a client; a property librdkafka refuses is a configuration error, naming it."""
    try:
        return factory(config, logger=ClientLogger(name))
    except ck.KafkaException as exc:
        raise creation_error(exc, name) from exc


def creation_error(exc: ck.KafkaException, name: str) -> ArchiverError:
    error = exc.args[0]
    if error.code() == ck.KafkaError._INVALID_ARG:
        return ConfigError(f"kafka.properties: {error.str()}")
    return KafkaFatalError(f"cannot create the Kafka {name}: {error.str()}")
