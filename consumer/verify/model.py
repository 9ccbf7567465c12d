"""The vocabulary of `verify`: findings, the Kafka side of a partition, and the inspection protocol.

Findings are facts about one partition (or one file of it); information lines use the same shape
but never make the archive inconsistent. The Kafka side reaches verify only through
`TopicInspector`, so every check can run against a fake in tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple, Protocol

from consumer.records import Headers, TopicPartition


class FindingKind(StrEnum):
    """What verify found; the last group is information and does not fail verification."""

    UNREADABLE = "unreadable"
    FOOTER = "footer"
    DUPLICATE = "duplicate"
    GAP = "gap"
    LOSS = "loss"
    IN_PROGRESS = "in_progress"
    MISSING_FILE = "missing_file"
    COUNTS = "counts"
    MISSING_RECORD = "missing_record"
    CONTENT = "content"
    BEYOND_END = "beyond_end"
    TOPIC_MISSING = "topic_missing"
    # information
    ARCHIVE_AHEAD = "archive_ahead"
    EXPLAINED_HOLE = "explained_hole"
    NO_COMMIT = "no_commit"
    LIMITED = "limited"
    NOTE = "note"

    @property
    def is_information(self) -> bool:
        return self in _INFORMATION


_INFORMATION = frozenset(
    {
        FindingKind.ARCHIVE_AHEAD,
        FindingKind.EXPLAINED_HOLE,
        FindingKind.NO_COMMIT,
        FindingKind.LIMITED,
        FindingKind.NOTE,
    }
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding about a partition (or a whole topic: partition None).

    Offsets are inclusive; the path is relative to the output root.
    """

    kind: FindingKind
    topic: str
    partition: int | None
    detail: str
    path: str | None = None
    first_offset: int | None = None
    last_offset: int | None = None

    @classmethod
    def of(
        cls,
        kind: FindingKind,
        tp: TopicPartition,
        detail: str,
        path: str | None = None,
        offsets: tuple[int | None, int | None] = (None, None),
    ) -> Finding:
        """A finding about one partition."""
        return cls(kind, tp.topic, tp.partition, detail, path, *offsets)


class TopicRecord(NamedTuple):
    """One record read back from Kafka, as plain values."""

    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None
    headers: Headers | None = None  # also None when a header key is not UTF-8 (quarantined so)


@dataclass(frozen=True, slots=True)
class PartitionState:
    """Kafka's view of a partition: retained offsets [low, high) and the group's committed next offset."""

    tp: TopicPartition
    low: int
    high: int
    committed: int | None


@dataclass(frozen=True, slots=True)
class ClusterView:
    """The partitions of the configured topics, and configured topics the cluster does not have."""

    partitions: list[PartitionState]
    missing_topics: list[str]


class TopicInspector(Protocol):
    """Read-only access to the configured topics and the group's offsets."""

    def describe(self) -> ClusterView:
        """Watermarks and committed offsets of every partition of the configured topics."""
        ...

    def read(self, tp: TopicPartition, start: int, end: int, deadline: float) -> Iterator[TopicRecord]:
        """The records of [start, end) in offset order; raise a FatalError past the monotonic deadline."""
        ...

    def close(self) -> None:
        """Release the client."""
        ...
