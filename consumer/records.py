"""Records as they leave Kafka: a partition's address and one poll's messages for it, as plain columns.

No confluent_kafka object outlives the poll that produced it; the adapter copies what the archiver
needs into a RawBatch of parallel lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class TopicPartition(NamedTuple):
    """A partition of a topic."""

    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]"


@dataclass(slots=True)
class RawBatch:
    """One partition's messages from one poll, in offset order, as parallel columns."""

    tp: TopicPartition
    offsets: list[int] = field(default_factory=list)
    timestamps_ms: list[int | None] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    values: list[bytes | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.offsets)
