"""Dead letters: a copy of every quarantined record on a Kafka topic, for whoever must act on it.

The quarantine files stay the durable record, exactly once like the data files. A copy is
published as soon as its record is rejected, and a segment that rejected records publishes its
files only once every copy published so far is acknowledged (segment.py): a finished file, and so
a committed offset, never stands for a dead letter that was not delivered. A record consumed
again (after a crash, or by the next owner of a lost partition) is published again, so the topic
receives each rejected record at least once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from consumer.records import Rejected, TopicPartition

HEADER_PREFIX = "archiver."


class DeadLetters(Protocol):
    """Where copies of rejected records go (a Kafka topic, in production)."""

    def publish(self, tp: TopicPartition, rejected: Sequence[Rejected]) -> None:
        """Queue a copy of each rejected record of one partition."""
        ...

    def settle(self) -> None:
        """Return once every copy queued so far is acknowledged; raise if one was refused."""
        ...


def origin_headers(tp: TopicPartition, entry: Rejected) -> list[tuple[str, bytes | None]]:
    """Where a dead letter came from, when it was written (the record's own timestamp, in ms, if it
    has one) and why it was rejected, as Kafka record headers."""
    fields = {
        "topic": tp.topic,
        "partition": str(tp.partition),
        "offset": str(entry.offset),
        **({"timestamp_ms": str(entry.timestamp_ms)} if entry.timestamp_ms is not None else {}),
        "reason": entry.reason.value,
        "detail": entry.detail,
    }
    return [(HEADER_PREFIX + name, value.encode()) for name, value in fields.items()]
