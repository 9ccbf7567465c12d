"""The memory budget: row data held in memory across all partitions stays under `max_buffered_bytes`.

Held means buffered in a row group, or handed to the writer thread and not yet on disk. Writing
starts early: once three quarters of the budget are held, the largest buffers are handed to the
writer thread as row groups (flush-on-pressure) until what stays buffered is back under that mark,
and the loop goes on parsing while they are written. The loop waits for the writer thread only
when a new batch would push the total over the budget itself. Memory in use is then at most the
budget plus the batch being added, however many partitions are open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from consumer.buffer import BufferTally
from consumer.partition_writer import PartitionWriter
from consumer.write_queue import WriteQueue

# The share of the budget at which flush-on-pressure starts writing: the rest is room for the row
# groups in flight, so that the loop rarely has to wait for the writer thread.
EARLY_FLUSH_SHARE = 0.75


class MemoryBudget:
    """Decides which buffers to write out and when to wait for the writer; the writers write."""

    def __init__(self, max_bytes: int, writes: WriteQueue, buffered: BufferTally) -> None:
        self.max_bytes = max_bytes
        self._early_bytes = int(max_bytes * EARLY_FLUSH_SHARE)
        self._writes = writes
        self._buffered = buffered

    def make_room(self, writers: Callable[[], Iterable[PartitionWriter]], incoming: int) -> int:
        """Flush the largest buffers until `incoming` more bytes fit; return how many were flushed.

        Under the early mark (most polls) this reads two totals and does not ask for the writers.
        """
        buffered = self._buffered.nbytes
        if buffered + self._writes.pending_bytes + incoming <= self._early_bytes:
            return 0
        candidates = sorted(
            (writer for writer in writers() if writer.buffered_bytes > 0),
            key=lambda w: w.buffered_bytes,
            reverse=True,
        )
        flushed = 0
        for writer in candidates:
            if buffered + incoming <= self._early_bytes:
                break
            writer.flush()  # its bytes move to the writer thread's queue
            buffered = self._buffered.nbytes
            flushed += 1
        self._writes.wait_until_pending_at_most(self.max_bytes - buffered - incoming)
        return flushed
