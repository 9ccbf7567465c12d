"""Dead letters on a Kafka topic: an idempotent producer, and the wait for its acknowledgements.

Each copy keeps the rejected record's key, value (raw bytes) and timestamp; its headers say where
it came from and why (consumer/dead_letters.py). A value too large for the topic's records (its
`max.message.bytes`, or the producer's `message.max.bytes`) is left out of the copy, or a key
that large, or both; the copy's headers then give their sizes, and the quarantine file holds
them. librdkafka retries a copy until `message.timeout.ms`; a copy it gives up on is a fatal
error, raised before the files holding its record are published.
"""

from __future__ import annotations

from collections.abc import Sequence

from consumer.config import KafkaSettings
from consumer.dead_letters import HEADER_PREFIX, origin_headers
from consumer.errors import KafkaFatalError
from consumer.kafka.admin import topic_max_message_bytes
from consumer.kafka.producer import KafkaProducer
from consumer.records import Rejected, TopicPartition

SETTLE_STEP_S = 1.0  # settle waits in steps, so that a signal is handled between them
PRODUCER_MAX_MESSAGE_BYTES = 1_000_000  # librdkafka's message.max.bytes and batch.size defaults
FRAMING_BYTES = 1024  # room for a record's and its batch's framing, beside key, value and headers
VALUE_OMITTED = HEADER_PREFIX + "value_omitted_bytes"
KEY_OMITTED = HEADER_PREFIX + "key_omitted_bytes"
# Copies waiting for the broker count beside the buffer budget: librdkafka's default queue would
# hold up to 1 GiB of them. When it is full, publishing waits for deliveries (the loop slows down).
QUEUE_KBYTES = 16 * 1024


class KafkaDeadLetters:
    """Publishes copies of rejected records to one topic, once connect() has checked it."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self._settings = settings
        self._topic = topic
        self._producer: KafkaProducer | None = None
        self._max_record_bytes = 0

    def connect(self) -> None:
        """Check that the topic exists, learn the largest record it takes, open the producer."""
        settings = self._settings
        producer_limit = int(
            settings.librdkafka_properties().get("message.max.bytes", PRODUCER_MAX_MESSAGE_BYTES)
        )
        limit = min(topic_max_message_bytes(settings, self._topic), producer_limit)
        self._max_record_bytes = limit - FRAMING_BYTES
        # A batch of copies must fit the topic's limit as a whole, not only each copy.
        defaults = {
            "queue.buffering.max.kbytes": QUEUE_KBYTES,
            "batch.size": min(limit, PRODUCER_MAX_MESSAGE_BYTES),
        }
        self._producer = KafkaProducer(settings, defaults)

    def publish(self, tp: TopicPartition, rejected: Sequence[Rejected]) -> None:
        producer = self._connected()
        for entry in rejected:
            headers = origin_headers(tp, entry)
            key, value = fit_copy(entry.key, entry.value, headers, self._max_record_bytes)
            producer.send(self._topic, key, value, headers, entry.timestamp_ms or 0)

    def settle(self) -> None:
        producer = self._connected()
        while producer.flush(SETTLE_STEP_S) > 0:
            producer.serve(0)
        if producer.deliveries.failed:
            raise KafkaFatalError(
                f"records.dead_letter_topic {self._topic}: {producer.deliveries.failed} dead letters were "
                f"not delivered ({'; '.join(producer.deliveries.errors)}); nothing more is committed"
            )

    def _connected(self) -> KafkaProducer:
        if self._producer is None:
            raise RuntimeError("KafkaDeadLetters.connect() was not called")
        return self._producer


def fit_copy(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, str | bytes | None]], max_bytes: int
) -> tuple[bytes | None, bytes | None]:
    """The key and value a copy can carry: while it is too large, the larger is left out and a header
    (added to `headers`) gives its size."""
    fixed = sum(len(name) + len(text or b"") for name, text in headers)
    while (key or value) and fixed + len(key or b"") + len(value or b"") > max_bytes:
        if len(value or b"") >= len(key or b""):
            headers.append((VALUE_OMITTED, str(len(value or b"")).encode()))
            value = None
        else:
            headers.append((KEY_OMITTED, str(len(key or b"")).encode()))
            key = None
    return key, value
