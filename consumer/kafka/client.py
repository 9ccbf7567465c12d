"""What every Kafka client of the archiver shares: librdkafka's log lines as structlog events, the
translation of a client that cannot be created into the archiver's errors, and a consume that
returns the messages already there without waiting for more."""

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


def consume_ready(consumer: ck.Consumer, limit: int, timeout_s: float) -> list[ck.Message]:
    """Up to `limit` messages (or events) as soon as there are any, waiting at most `timeout_s` for
    the first one.

    The client's own `consume(limit, timeout)` waits for all `limit` messages until its timeout
    (and, from confluent-kafka 2.13, in 200 ms chunks whose behaviour changed between releases):
    the last records before a quiet spell would wait out the whole timeout. Taking what the client
    already holds first, then waiting for one message with `poll`, returns as soon as anything is
    there on every release. Both serve the same queue, in order, with the same callbacks.
    """
    messages = consumer.consume(num_messages=limit, timeout=0)
    if messages or timeout_s <= 0:
        return messages
    first = consumer.poll(timeout_s)
    if first is None:
        return []
    return [first, *consumer.consume(num_messages=limit - 1, timeout=0)] if limit > 1 else [first]
