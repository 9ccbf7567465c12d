"""The memory budget: flush the largest buffers first, only as many as needed for a batch to fit."""

from __future__ import annotations

from typing import cast

from consumer.budget import MemoryBudget
from consumer.partition_writer import PartitionWriter
from consumer.write_queue import WriteQueue


class FakeWrites:
    """The writer thread's queue, holding `pending_bytes`; records the limits the budget waited for."""

    def __init__(self, pending_bytes: int = 0) -> None:
        self.pending_bytes = pending_bytes
        self.waited_for: list[int] = []

    def wait_until_pending_at_most(self, nbytes: int) -> None:
        self.waited_for.append(nbytes)
        self.pending_bytes = min(self.pending_bytes, max(0, nbytes))


def _budget(max_bytes: int, writes: FakeWrites | None = None) -> MemoryBudget:
    return MemoryBudget(max_bytes, cast(WriteQueue, writes or FakeWrites()))


class FakeWriter:
    """A writer with some buffered bytes; flush() empties it and records the flush."""

    def __init__(self, buffered_bytes: int, flushed: list[int]) -> None:
        self.buffered_bytes = buffered_bytes
        self._flushed = flushed

    def flush(self) -> None:
        self._flushed.append(self.buffered_bytes)
        self.buffered_bytes = 0


def _writers(*sizes: int) -> tuple[list[PartitionWriter], list[int]]:
    flushed: list[int] = []
    writers = [FakeWriter(size, flushed) for size in sizes]
    return cast(list[PartitionWriter], writers), flushed


class TestMemoryBudget:
    def test_nothing_flushed_when_the_batch_fits(self) -> None:
        """Total plus incoming under the budget flushes nothing."""
        writers, flushed = _writers(100, 200)
        assert _budget(1_000).make_room(writers, 500) == 0
        assert flushed == []

    def test_nothing_flushed_when_the_batch_fits_exactly(self) -> None:
        """Total plus incoming equal to the budget still fits."""
        writers, flushed = _writers(100, 200)
        assert _budget(1_000).make_room(writers, 700) == 0
        assert flushed == []

    def test_flushes_the_largest_buffer_first(self) -> None:
        """One flush is enough: it is the largest buffer's."""
        writers, flushed = _writers(100, 300, 200)
        assert _budget(400).make_room(writers, 50) == 1
        assert flushed == [300]

    def test_flushes_only_as_many_as_needed(self) -> None:
        """Buffers are flushed largest first until total + incoming <= max_bytes, then no more."""
        writers, flushed = _writers(100, 300, 200, 50)
        assert _budget(400).make_room(writers, 250) == 2
        assert flushed == [300, 200]
        assert sum(w.buffered_bytes for w in writers) + 250 <= 400

    def test_incoming_larger_than_the_budget_flushes_every_buffer(self) -> None:
        """A batch bigger than the budget flushes every non-empty buffer."""
        writers, flushed = _writers(100, 0, 300)
        assert _budget(400).make_room(writers, 500) == 2
        assert flushed == [300, 100]

    def test_empty_buffers_are_never_flushed(self) -> None:
        """Writers without buffered bytes are not flushed and not counted."""
        writers, flushed = _writers(0, 0)
        assert _budget(10).make_room(writers, 100) == 0
        assert flushed == []

    def test_row_groups_waiting_for_the_writer_count_against_the_budget(self) -> None:
        """Bytes queued for the writer count; when buffers alone fit, the budget only waits for the writer."""
        writers, flushed = _writers(100)
        writes = FakeWrites(pending_bytes=250)
        assert _budget(400, writes).make_room(writers, 100) == 0
        assert flushed == []
        assert writes.waited_for == [200]

    def test_flushes_and_then_waits_when_buffers_do_not_fit(self) -> None:
        """Buffers over the budget are flushed, then the budget waits until the writer caught up."""
        writers, flushed = _writers(300, 200)
        writes = FakeWrites(pending_bytes=100)
        assert _budget(400, writes).make_room(writers, 100) == 1
        assert flushed == [300]
        assert writes.waited_for == [100]
