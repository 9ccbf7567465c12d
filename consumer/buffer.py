"""The row-group buffer: Arrow batches waiting to be written as one row group. No I/O.

It holds Arrow data only (never Python dicts), so the cyclic garbage collector has nothing to
rescan, and its size in bytes is exact: the sum of the batches' buffers.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

# Turns a buffered batch into the row group's schema (pads, casts, or moves values as needed).
Conform = Callable[[pa.RecordBatch, pa.Schema], pa.RecordBatch]


class BufferTally:
    """The bytes held by all the row-group buffers that share it, kept as they change.

    The memory budget reads it on every poll of every partition: summing the buffers there would
    cost time in proportion to the number of partitions, once per partition polled.
    """

    def __init__(self) -> None:
        self.nbytes = 0


class RowGroupBuffer:
    """Batches of one output file's next row group, with their row and byte counts (also in `tally`)."""

    def __init__(self, tally: BufferTally) -> None:
        self._tally = tally
        self._batches: list[pa.RecordBatch] = []
        self.rows = 0
        self.nbytes = 0

    def __bool__(self) -> bool:
        return self.rows > 0

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        nbytes = batch.get_total_buffer_size()
        self._batches.append(batch)
        self.rows += batch.num_rows
        self.nbytes += nbytes
        self._tally.nbytes += nbytes

    def take(self, schema: pa.Schema, conform: Conform) -> pa.Table:
        """Empty the buffer into one table of the given schema."""
        table = pa.Table.from_batches([conform(batch, schema) for batch in self._batches], schema=schema)
        self.clear()
        return table

    def clear(self) -> None:
        """Drop everything buffered (the file is being aborted, or its rows were taken)."""
        self._tally.nbytes -= self.nbytes
        self._batches = []
        self.rows = 0
        self.nbytes = 0

    def first(self) -> pa.RecordBatch | None:
        """The oldest buffered batch, if any."""
        return self._batches[0] if self._batches else None
