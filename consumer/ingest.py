"""One partition's poll into its writer: drop what was already taken, decode, convert, make room, buffer.

Rows exist as Python dicts only between decoding and conversion, one poll at a time; the buffer
holds Arrow data. Memory is made for the converted batch before it is buffered. Rejected records
go to the writer's quarantine and, when a dead-letter topic is set, a copy of each to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from consumer.budget import MemoryBudget
from consumer.convert import RowConverter
from consumer.counters import Counters
from consumer.dead_letters import DeadLetters
from consumer.partition_writer import PartitionWriter
from consumer.records import Decoder, RawBatch


class Ingest:
    """Turns raw polls into buffered Arrow rows and quarantine entries."""

    def __init__(
        self,
        decoder: Decoder,
        converter: RowConverter,
        budget: MemoryBudget,
        counters: Counters,
        dead_letters: DeadLetters | None,
    ) -> None:
        self._decoder = decoder
        self._converter = converter
        self._budget = budget
        self._counters = counters
        self._dead_letters = dead_letters

    def ingest(
        self,
        writer: PartitionWriter,
        raw: RawBatch,
        everyone: Callable[[], Iterable[PartitionWriter]],
        now: float,
        wall_now: float,
    ) -> None:
        unseen = writer.unseen(raw)
        if unseen is None:
            return
        decoded = self._decoder.decode(unseen)
        schema = writer.file_schema(decoded.first_offset, now)
        conversion = self._converter.convert(decoded, schema, writer.topic)
        incoming = conversion.batch.get_total_buffer_size() if conversion.batch is not None else 0
        self._counters.flushes_on_pressure += self._budget.make_room(everyone, incoming)
        writer.append(decoded, conversion, now, wall_now)
        rejected = [*decoded.rejected, *conversion.rejected]
        if rejected and self._dead_letters is not None:
            self._dead_letters.publish(raw.tp, rejected)
        self._counters.record_poll(raw.tp.topic, len(unseen), rejected, decoded.skipped)
