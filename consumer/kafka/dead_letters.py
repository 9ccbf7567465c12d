"""Dead letters on a Kafka topic: an idempotent producer, and the wait for its acknowledgements.

Each copy keeps the rejected record's key, value (raw bytes), and its headers when the archiver
reads them (`_headers` among the metadata columns); headers added after them say where it came
from, its timestamp and why (consumer/dead_letters.py). A copy is timestamped when it is sent: the
dead-letter topic's own limits then apply to the copy, not to the record (a broker refuses a
record dated more than `message.timestamp.after.max.ms`, one hour by default, ahead, and retention
would soon delete a copy dated like a month-old record). What makes a copy too large for the
topic's records (its `max.message.bytes`, or the producer's `message.max.bytes`) is left out of
it, largest first: the value, the key, the record's own headers; the copy's headers then give
their sizes, and the quarantine file holds them. librdkafka retries a copy until
`message.timeout.ms`; a copy it gives up on is a fatal error, raised before the files holding its
record are published.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
HEADERS_OMITTED = HEADER_PREFIX + "headers_omitted_bytes"
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
            copy = fit_copy(entry, origin_headers(tp, entry), self._max_record_bytes)
            producer.send(self._topic, copy.key, copy.value, copy.headers)

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


@dataclass(frozen=True, slots=True)
class Copy:
    """What a dead letter carries."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def fit_copy(entry: Rejected, origin: list[tuple[str, bytes | None]], max_bytes: int) -> Copy:
    """The rejected record's key, value and headers, then the `origin` headers, within max_bytes.

    While the copy is too large, the largest of its value, key and own headers is left out, and a
    header after the origin headers gives its size.
    """
    key, value, own = entry.key, entry.value, entry.headers or []
    sizes = {VALUE_OMITTED: len(value or b""), KEY_OMITTED: len(key or b""), HEADERS_OMITTED: _size(own)}
    total = _size(origin) + sum(sizes.values())
    omitted: list[tuple[str, bytes | None]] = []
    while total > max_bytes and any(sizes.values()):
        largest = max(sizes, key=sizes.__getitem__)
        omitted.append((largest, str(sizes[largest]).encode()))
        total += _size(omitted[-1:]) - sizes[largest]
        sizes[largest] = 0
    left_out = {name for name, _ in omitted}
    return Copy(
        None if KEY_OMITTED in left_out else key,
        None if VALUE_OMITTED in left_out else value,
        [*([] if HEADERS_OMITTED in left_out else own), *origin, *omitted],
    )


def _size(headers: Sequence[tuple[str, bytes | None]]) -> int:
    return sum(len(name.encode()) + len(value or b"") for name, value in headers)
