"""The row-group buffer: Arrow batches waiting to be written as one row group. No I/O.

It holds Arrow data only (never Python dicts), so the cyclic garbage collector has nothing to
rescan, and its size in bytes is exact: the sum of the batches' buffers.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

# Turns a buffered batch into the row group's schema (pads, casts, or moves values as needed).
Conform = Callable[[pa.RecordBatch, pa.Schema], pa.RecordBatch]


class RowGroupBuffer:
    """Batches of one output file's next row group, with their row and byte counts."""

    def __init__(self) -> None:
        self._batches: list[pa.RecordBatch] = []
        self.rows = 0
        self.nbytes = 0

    def __bool__(self) -> bool:
        return self.rows > 0

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        self._batches.append(batch)
        self.rows += batch.num_rows
        self.nbytes += batch.get_total_buffer_size()

    def take(self, schema: pa.Schema, conform: Conform) -> pa.Table:
        """Empty the buffer into one table of the given schema."""
        table = pa.Table.from_batches([conform(batch, schema) for batch in self._batches], schema=schema)
        self._batches = []
        self.rows = 0
        self.nbytes = 0
        return table

    def clear(self) -> None:
        """Drop everything buffered (the file is being aborted)."""
        self._batches = []
        self.rows = 0
        self.nbytes = 0

    def first(self) -> pa.RecordBatch | None:
        """The oldest buffered batch, if any."""
        return self._batches[0] if self._batches else None
