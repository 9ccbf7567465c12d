"""The memory budget: start writing the largest buffers early, wait for the writer only beyond the budget."""

from __future__ import annotations

from typing import cast

from consumer.budget import MemoryBudget
from consumer.buffer import BufferTally
from consumer.partition_writer import PartitionWriter
from consumer.write_queue import WriteQueue


class FakeWrites:
    """The writer thread's queue, holding `pending_bytes`; records how many bytes the loop waited for.

    `buffered` is the tally of the fake writers' buffers, as the real buffers keep it.
    """

    def __init__(self, pending_bytes: int = 0) -> None:
        self.pending_bytes = pending_bytes
        self.waited_for: list[int] = []
        self.buffered = BufferTally()

    def wait_until_pending_at_most(self, nbytes: int) -> None:
        excess = self.pending_bytes - max(0, nbytes)
        if excess > 0:  # the loop blocks until the writer thread has written this much
            self.waited_for.append(excess)
            self.pending_bytes -= excess


def _budget(max_bytes: int, writes: FakeWrites) -> MemoryBudget:
    return MemoryBudget(max_bytes, cast(WriteQueue, writes), writes.buffered)


class FakeWriter:
    """A writer with some buffered bytes; flush() hands them to the writer queue and records the flush."""

    def __init__(self, buffered_bytes: int, writes: FakeWrites, flushed: list[int]) -> None:
        self.buffered_bytes = buffered_bytes
        self._writes = writes
        self._flushed = flushed
        writes.buffered.nbytes += buffered_bytes

    def flush(self) -> None:
        self._flushed.append(self.buffered_bytes)
        self._writes.pending_bytes += self.buffered_bytes
        self._writes.buffered.nbytes -= self.buffered_bytes
        self.buffered_bytes = 0


def _untouchable() -> list[PartitionWriter]:
    raise AssertionError("the budget asked for the writers")


def _writers(*sizes: int, pending_bytes: int = 0) -> tuple[list[PartitionWriter], list[int], FakeWrites]:
    flushed: list[int] = []
    writes = FakeWrites(pending_bytes)
    writers = [FakeWriter(size, writes, flushed) for size in sizes]
    return cast(list[PartitionWriter], writers), flushed, writes


class TestMemoryBudget:
    """Budget 400 bytes: writing starts at 300 (three quarters), the loop waits only beyond 400."""

    def test_nothing_flushed_while_under_the_early_mark(self) -> None:
        """Total plus incoming up to three quarters of the budget flushes nothing and waits for nothing."""
        writers, flushed, writes = _writers(100, 100, pending_bytes=50)
        assert _budget(400, writes).make_room(lambda: writers, 50) == 0
        assert flushed == []
        assert writes.waited_for == []

    def test_under_the_early_mark_the_writers_are_not_looked_at(self) -> None:
        """The common case reads the buffers' tally and the queue only, however many partitions are open."""
        _, flushed, writes = _writers(100, 100)
        assert _budget(400, writes).make_room(_untouchable, 50) == 0
        assert flushed == []

    def test_writing_starts_at_the_early_mark_without_waiting(self) -> None:
        """Past three quarters of the budget the largest buffer is handed over; it fits, so no wait."""
        writers, flushed, writes = _writers(250, 50)
        assert _budget(400, writes).make_room(lambda: writers, 50) == 1
        assert flushed == [250]
        assert writes.waited_for == []
        assert writes.pending_bytes == 250

    def test_flushes_only_as_many_as_needed(self) -> None:
        """Buffers are flushed largest first until buffered + incoming <= the early mark, then no more."""
        writers, flushed, writes = _writers(100, 300, 200, 50)
        assert _budget(1_000, writes).make_room(lambda: writers, 450) == 2
        assert flushed == [300, 200]
        assert sum(w.buffered_bytes for w in writers) + 450 <= 750

    def test_incoming_larger_than_the_budget_flushes_every_buffer(self) -> None:
        """A batch bigger than the budget flushes every non-empty buffer and waits for all of it."""
        writers, flushed, writes = _writers(100, 0, 300)
        assert _budget(400, writes).make_room(lambda: writers, 500) == 2
        assert flushed == [300, 100]
        assert writes.waited_for == [400]

    def test_empty_buffers_are_never_flushed(self) -> None:
        """Writers without buffered bytes are not flushed and not counted."""
        writers, flushed, writes = _writers(0, 0)
        assert _budget(10, writes).make_room(lambda: writers, 100) == 0
        assert flushed == []

    def test_row_groups_waiting_for_the_writer_count_against_the_budget(self) -> None:
        """Bytes queued for the writer count; when buffers fit, the loop only waits for the writer."""
        writers, flushed, writes = _writers(100, pending_bytes=250)
        assert _budget(400, writes).make_room(lambda: writers, 100) == 0
        assert flushed == []
        assert writes.waited_for == [50]

    def test_flushes_and_then_waits_when_the_total_exceeds_the_budget(self) -> None:
        """Over the budget: the largest buffer is flushed, then the loop waits until the batch fits."""
        writers, flushed, writes = _writers(300, 200, pending_bytes=100)
        assert _budget(400, writes).make_room(lambda: writers, 100) == 1
        assert flushed == [300]
        assert writes.waited_for == [300]
        assert writes.pending_bytes + 200 + 100 <= 400
