"""Records from Kafka: one poll's messages per partition as plain columns, decoded into rows or rejects.

No confluent_kafka object outlives the poll that produced it; the adapter copies what the archiver
needs into a RawBatch of parallel lists. The Decoder turns values into Python dicts with orjson;
everything that is not a JSON object becomes a Rejected entry with a reason, never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple, cast

import orjson

from consumer.schema import json_type_name

# A record's Kafka headers as the client gives them: (key, value) pairs in order, keys may repeat.
Headers = list[tuple[str, bytes | None]]


@dataclass(frozen=True, slots=True)
class UnreadableHeaders:
    """Headers the client could not give: one of their keys is not UTF-8. The record is rejected."""

    detail: str


# What the source took from a record's headers: them, an unreadable set, or None (no headers).
RawHeaders = Headers | UnreadableHeaders | None


class TopicPartition(NamedTuple):
    """A partition of a topic."""

    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]"


@dataclass(slots=True)
class RawBatch:
    """One partition's messages from one poll, in offset order, as parallel columns.

    `headers` is None unless the source reads headers (`_headers` among the metadata columns);
    then each record has its headers, None when it has none, or UnreadableHeaders.
    """

    tp: TopicPartition
    offsets: list[int] = field(default_factory=list)
    timestamps_ms: list[int | None] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    values: list[bytes | None] = field(default_factory=list)
    headers: list[RawHeaders] | None = None

    def __len__(self) -> int:
        return len(self.offsets)

    def starting_at(self, index: int) -> RawBatch:
        """The records from the index-th on."""
        headers = self.headers[index:] if self.headers is not None else None
        return RawBatch(
            self.tp,
            self.offsets[index:],
            self.timestamps_ms[index:],
            self.keys[index:],
            self.values[index:],
            headers,
        )


@dataclass(slots=True)
class Poll:
    """What one poll returned: each partition's records, and where the client reached a partition's end.

    `ends` maps a partition to its end offset (the offset after its last record) for every partition
    the client reported reaching during the poll, whether or not records came with it.
    """

    batches: list[RawBatch]
    ends: dict[TopicPartition, int]


class Reason(StrEnum):
    """Why a record went to the quarantine."""

    INVALID_JSON = "invalid_json"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_HEADERS = "invalid_headers"
    NOT_AN_OBJECT = "not_an_object"
    OVERSIZE = "oversize"
    TOMBSTONE = "tombstone"
    INTEGER_OUT_OF_RANGE = "integer_out_of_range"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    UNCONVERTIBLE = "unconvertible"
    SCHEMA_MISMATCH = "schema_mismatch"
    UNKNOWN_KEY = "unknown_key"


@dataclass(slots=True)
class Rejected:
    """A record bound for the quarantine, with the reason and a human-readable detail."""

    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    reason: Reason
    detail: str
    headers: Headers | None = None


@dataclass(slots=True)
class DecodedBatch:
    """One partition's poll after decoding: parsed rows with their metadata, and what was rejected.

    `rows[i]` came from the record at `offsets[i]`; `values[i]` is its raw bytes, kept only as a
    reference for exact re-checks; `headers[i]` its headers when the source reads them.
    `first_offset`/`last_offset` span every record of the poll, including rejected and skipped ones.
    """

    tp: TopicPartition
    rows: list[dict[str, Any]]
    offsets: list[int]
    timestamps_ms: list[int | None]
    keys: list[bytes | None]
    values: list[bytes]
    rejected: list[Rejected]
    skipped: int
    first_offset: int
    last_offset: int
    headers: list[Headers | None] | None = None


class Decoder:
    """Parses raw values with orjson into rows; anything that is not a JSON object is rejected."""

    def __init__(self, max_value_bytes: int, quarantine_tombstones: bool) -> None:
        self._max_value_bytes = max_value_bytes
        self._quarantine_tombstones = quarantine_tombstones

    def decode(self, raw: RawBatch) -> DecodedBatch:
        """Parse every value; the whole poll at C speed when all are good, one by one otherwise."""
        values = raw.values
        if not values:
            return DecodedBatch(raw.tp, [], [], [], [], [], [], 0, -1, -1)
        if raw.headers is not None and UnreadableHeaders in set(map(type, raw.headers)):
            return self._decode_each(raw)
        try:
            if max(map(len, values)) <= self._max_value_bytes:  # type: ignore[arg-type]
                rows = list(map(orjson.loads, values))  # type: ignore[arg-type]
                if set(map(type, rows)) == {dict}:
                    return self._assemble(raw, rows, range(len(rows)), [], 0)
        except (TypeError, orjson.JSONDecodeError):
            pass  # a tombstone or a bad value: sort the records one by one
        return self._decode_each(raw)

    def _decode_each(self, raw: RawBatch) -> DecodedBatch:
        rows: list[dict[str, Any]] = []
        kept: list[int] = []
        rejected: list[Rejected] = []
        skipped = 0
        loads = orjson.loads
        limit = self._max_value_bytes
        headers = raw.headers or []
        for index, value in enumerate(raw.values):
            if headers and isinstance(unreadable := headers[index], UnreadableHeaders):
                rejected.append(self._reject(raw, index, Reason.INVALID_HEADERS, unreadable.detail))
                continue
            if value is None:
                if self._quarantine_tombstones:
                    rejected.append(self._reject(raw, index, Reason.TOMBSTONE, "null value (tombstone)"))
                else:
                    skipped += 1
                continue
            if len(value) > limit:
                rejected.append(self._reject(raw, index, Reason.OVERSIZE, f"{len(value)} bytes > {limit}"))
                continue
            try:
                row = loads(value)
            except orjson.JSONDecodeError as exc:
                rejected.append(self._reject(raw, index, *_parse_failure(value, exc)))
                continue
            if type(row) is dict:
                rows.append(row)
                kept.append(index)
            else:
                detail = f"a JSON {json_type_name(row)}, not an object"
                rejected.append(self._reject(raw, index, Reason.NOT_AN_OBJECT, detail))
        return self._assemble(raw, rows, kept, rejected, skipped)

    @staticmethod
    def _reject(raw: RawBatch, index: int, reason: Reason, detail: str) -> Rejected:
        headers = raw.headers[index] if raw.headers is not None else None
        if isinstance(headers, UnreadableHeaders):
            headers = None
        return Rejected(
            raw.offsets[index],
            raw.timestamps_ms[index],
            raw.keys[index],
            raw.values[index],
            reason,
            detail,
            headers,
        )

    @staticmethod
    def _assemble(
        raw: RawBatch, rows: list[dict[str, Any]], kept: Sequence[int], rejected: list[Rejected], skipped: int
    ) -> DecodedBatch:
        headers = raw.headers
        if len(kept) == len(raw):  # the common case: every record is a row, reuse the columns
            offsets, timestamps, keys = raw.offsets, raw.timestamps_ms, raw.keys
            values = cast(list[bytes], raw.values)
        else:
            offsets = [raw.offsets[i] for i in kept]
            timestamps = [raw.timestamps_ms[i] for i in kept]
            keys = [raw.keys[i] for i in kept]
            values = [cast(bytes, raw.values[i]) for i in kept]
            headers = [headers[i] for i in kept] if headers is not None else None  # all readable
        return DecodedBatch(
            raw.tp,
            rows,
            offsets,
            timestamps,
            keys,
            values,
            rejected,
            skipped,
            raw.offsets[0],
            raw.offsets[-1],
            cast(list[Headers | None] | None, headers),
        )


HUGE_INTEGER_DETAIL = "an integer beyond 64 bits cannot be kept exactly"
UINT64_MAX = 2**64 - 1


def _parse_failure(value: bytes, exc: orjson.JSONDecodeError) -> tuple[Reason, str]:
    """Why orjson refused a value: not UTF-8, an integer too large even for a double, or not JSON."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return Reason.INVALID_UTF8, str(exc)
    try:  # the standard library reads integers of any size, so it tells the one case apart
        parsed = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        return Reason.INVALID_JSON, str(exc)
    if holds_huge_integer(parsed):
        return Reason.INTEGER_OUT_OF_RANGE, HUGE_INTEGER_DETAIL
    return Reason.INVALID_JSON, str(exc)


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def holds_huge_integer(value: Any) -> bool:
    """Whether a value decoded with exact integers holds one outside [-2**63, 2**64 - 1]."""
    if type(value) is int:
        return not -(2**63) <= value <= UINT64_MAX
    if isinstance(value, dict):
        return any(holds_huge_integer(item) for item in value.values())
    if isinstance(value, list):
        return any(holds_huge_integer(item) for item in value)
    return False
