"""The memory budget: buffered data across all partitions stays under `max_buffered_bytes`.

When a new batch would push the total over the budget, the largest buffers are written out as
row groups first (flush-on-pressure), until the batch fits. Memory in use is then at most the
budget plus the batch being added, however many partitions are open.
"""

from __future__ import annotations

from collections.abc import Iterable

from consumer.partition_writer import PartitionWriter


class MemoryBudget:
    """Decides which buffers to write out; the writers do the writing."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def make_room(self, writers: Iterable[PartitionWriter], incoming: int) -> int:
        """Flush the largest buffers until `incoming` more bytes fit; return how many were flushed."""
        candidates = sorted(
            (writer for writer in writers if writer.buffered_bytes > 0),
            key=lambda w: w.buffered_bytes,
            reverse=True,
        )
        total = sum(writer.buffered_bytes for writer in candidates)
        flushed = 0
        for writer in candidates:
            if total + incoming <= self.max_bytes:
                break
            total -= writer.buffered_bytes
            writer.flush()
            flushed += 1
        return flushed
