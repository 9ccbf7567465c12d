"""The memory budget: row data held in memory across all partitions stays under `max_buffered_bytes`.

Held means buffered in a row group, or handed to the writer thread and not yet on disk. When a new
batch would push the total over the budget, the largest buffers are written out as row groups
first (flush-on-pressure), and the loop waits for the writer thread until the batch fits. Memory
in use is then at most the budget plus the batch being added, however many partitions are open.
"""

from __future__ import annotations

from collections.abc import Iterable

from consumer.partition_writer import PartitionWriter
from consumer.write_queue import WriteQueue


class MemoryBudget:
    """Decides which buffers to write out and when to wait for the writer; the writers write."""

    def __init__(self, max_bytes: int, writes: WriteQueue) -> None:
        self.max_bytes = max_bytes
        self._writes = writes

    def make_room(self, writers: Iterable[PartitionWriter], incoming: int) -> int:
        """Flush the largest buffers until `incoming` more bytes fit; return how many were flushed."""
        candidates = sorted(
            (writer for writer in writers if writer.buffered_bytes > 0),
            key=lambda w: w.buffered_bytes,
            reverse=True,
        )
        buffered = sum(writer.buffered_bytes for writer in candidates)
        if buffered + self._writes.pending_bytes + incoming <= self.max_bytes:
            return 0
        flushed = 0
        for writer in candidates:
            if buffered + incoming <= self.max_bytes:
                break
            buffered -= writer.buffered_bytes
            writer.flush()  # its bytes move to the writer thread's queue
            flushed += 1
        self._writes.wait_until_pending_at_most(self.max_bytes - buffered - incoming)
        return flushed
