"""Unit-test parts: a fake clock and commit, real sinks on tmp_path, polls built as ingest builds them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from consumer.buffer import BufferTally
from consumer.column_registry import ColumnRegistry
from consumer.convert import Conversion, RowConverter, metadata_fields
from consumer.errors import CommitRefusedError
from consumer.naming import DayRule
from consumer.parquet_file import WriterOptions
from consumer.partition_writer import PartitionWriter
from consumer.records import DecodedBatch, Decoder, RawBatch, TopicPartition
from consumer.schema import FileSchema, SchemaPolicy, TopicSchema
from consumer.segment import SinkSettings
from consumer.storage import LocalStorage
from consumer.write_queue import WriteQueue

METADATA_COLUMNS = ("_partition", "_offset", "_timestamp", "_key")
TOPIC = "events"
TP = TopicPartition(TOPIC, 0)
JAN_1_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
DAY_MS = 86_400_000
WALL_NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
EAGER_SCHEMA = SchemaPolicy(min_key_count=1, min_key_frequency=0.0)  # every key gets a column at once
WRITES = WriteQueue()  # one writer thread for every test's files, as the daemon has one


class FakeClock:
    """A Clock whose time moves only when a test says so."""

    def __init__(self, monotonic: float = 1_000.0, wall: float = WALL_NOW) -> None:
        self._monotonic = monotonic
        self._wall = wall

    def monotonic(self) -> float:
        return self._monotonic

    def wall(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._monotonic += seconds
        self._wall += seconds


class FakeCommit:
    """The Kafka commit function: records every call, and refuses while `refuse` is set."""

    def __init__(self) -> None:
        self.calls: list[dict[TopicPartition, int]] = []
        self.refuse = False

    def __call__(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.calls.append(dict(offsets))
        if self.refuse:
            raise CommitRefusedError("rebalance in progress")


def sink_settings(
    root: Path,
    *,
    row_group_max_bytes: int = 64 * 1024 * 1024,
    row_group_max_rows: int = 1_000_000,
) -> SinkSettings:
    """SinkSettings as the daemon builds them, on a real LocalStorage."""
    return SinkSettings(
        LocalStorage(root),
        WriterOptions(),
        row_group_max_bytes,
        row_group_max_rows,
        DayRule(),
        WRITES,
        ColumnRegistry(LocalStorage(root)),
        BufferTally(),
    )


def topic_schema(topic: str = TOPIC) -> TopicSchema:
    return TopicSchema(topic, EAGER_SCHEMA)


def file_schema() -> FileSchema:
    return FileSchema(metadata_fields(METADATA_COLUMNS))


def value(row: dict[str, Any]) -> bytes:
    return orjson.dumps(row)


def raw_batch(
    first_offset: int,
    values: Sequence[bytes | None],
    timestamps_ms: Sequence[int | None] | None = None,
    tp: TopicPartition = TP,
) -> RawBatch:
    """A poll of consecutive offsets; timestamps default to one second apart from 2024-01-01."""
    count = len(values)
    stamps: list[int | None] = [JAN_1_MS + i * 1000 for i in range(count)]
    if timestamps_ms is not None:
        stamps = list(timestamps_ms)
    offsets = list(range(first_offset, first_offset + count))
    return RawBatch(tp, offsets, stamps, [None] * count, list(values))


def rows(first_offset: int, count: int, tp: TopicPartition = TP) -> RawBatch:
    """A poll of well-formed JSON objects."""
    values = [
        value({"id": offset, "name": f"n{offset % 3}"})
        for offset in range(first_offset, first_offset + count)
    ]
    return raw_batch(first_offset, values, tp=tp)


def prepare(raw: RawBatch, file: FileSchema, topic: TopicSchema) -> tuple[DecodedBatch, Conversion]:
    """Decode and convert a poll with the real Decoder and RowConverter (tombstones are skipped)."""
    decoded = Decoder(1024 * 1024, False).decode(raw)
    return decoded, RowConverter(METADATA_COLUMNS).convert(decoded, file, topic)


def feed(writer: PartitionWriter, raw: RawBatch, now: float, wall_now: float = WALL_NOW) -> None:
    """Hand a poll to a writer the way consumer.ingest does (without the memory budget)."""
    unseen = writer.unseen(raw)
    if unseen is None:
        return
    decoded = Decoder(1024 * 1024, False).decode(unseen)
    schema = writer.file_schema(decoded.first_offset, now)
    conversion = RowConverter(METADATA_COLUMNS).convert(decoded, schema, writer.topic)
    writer.append(decoded, conversion, now, wall_now)
