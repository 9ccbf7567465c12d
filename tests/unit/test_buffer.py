"""The row-group buffer: exact row and byte counts, and one conformed table per take."""

from __future__ import annotations

import pyarrow as pa

from consumer.buffer import BufferTally, RowGroupBuffer

SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())])


def _batch(ids: list[int]) -> pa.RecordBatch:
    return pa.record_batch([pa.array(ids, pa.int64())], names=["id"])


def _add_names(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """A conform function: fills the missing name column from the ids."""
    names = pa.array([f"n{i}" for i in batch.column(0).to_pylist()], pa.string())
    return pa.RecordBatch.from_arrays([batch.column(0), names], schema=schema)


class TestRowGroupBuffer:
    def test_starts_empty(self) -> None:
        """A new buffer is falsy, with no rows, no bytes and no first batch."""
        buffer = RowGroupBuffer(BufferTally())
        assert not buffer
        assert (buffer.rows, buffer.nbytes, buffer.first()) == (0, 0, None)

    def test_counts_rows_and_bytes_exactly(self) -> None:
        """Rows and bytes are the sums of the batches' rows and get_total_buffer_size() (whole buffers)."""
        first, second = _batch([1, 2, 3]), _batch([4, 5, 6, 7]).slice(1, 2)  # a slice holds all 4 values
        buffer = RowGroupBuffer(BufferTally())
        buffer.add(first)
        buffer.add(second)
        assert buffer
        assert buffer.rows == 5
        assert buffer.nbytes == first.get_total_buffer_size() + second.get_total_buffer_size()

    def test_ignores_empty_batches(self) -> None:
        """An empty batch changes neither the counts nor what is taken."""
        buffer = RowGroupBuffer(BufferTally())
        buffer.add(_batch([]))
        assert (buffer.rows, buffer.nbytes, buffer.first()) == (0, 0, None)
        buffer.add(_batch([7]))
        buffer.add(_batch([]))
        assert buffer.take(SCHEMA, _add_names).num_rows == 1

    def test_take_returns_one_table_in_the_schema(self) -> None:
        """take() conforms every batch to the schema and returns them as one table, in order."""
        buffer = RowGroupBuffer(BufferTally())
        buffer.add(_batch([1, 2]))
        buffer.add(_batch([3]))
        table = buffer.take(SCHEMA, _add_names)
        assert table.schema.equals(SCHEMA)
        assert table.to_pylist() == [
            {"id": 1, "name": "n1"},
            {"id": 2, "name": "n2"},
            {"id": 3, "name": "n3"},
        ]

    def test_take_empties_the_buffer(self) -> None:
        """After take() the buffer holds no rows, no bytes and no batches."""
        buffer = RowGroupBuffer(BufferTally())
        buffer.add(_batch([1, 2]))
        buffer.take(SCHEMA, _add_names)
        assert not buffer
        assert (buffer.rows, buffer.nbytes, buffer.first()) == (0, 0, None)
        assert buffer.take(SCHEMA, _add_names).num_rows == 0

    def test_clear_drops_everything(self) -> None:
        """clear() discards the buffered batches and their counts."""
        buffer = RowGroupBuffer(BufferTally())
        buffer.add(_batch([1, 2]))
        buffer.clear()
        assert (buffer.rows, buffer.nbytes, buffer.first()) == (0, 0, None)

    def test_first_is_the_oldest_batch(self) -> None:
        """first() is the batch added first."""
        oldest = _batch([1])
        buffer = RowGroupBuffer(BufferTally())
        buffer.add(oldest)
        buffer.add(_batch([2]))
        assert buffer.first() is oldest


class TestBufferTally:
    def test_holds_the_bytes_of_every_buffer_sharing_it(self) -> None:
        """Adds raise the tally; take() and clear() lower it by what that buffer held."""
        tally = BufferTally()
        taken, cleared = RowGroupBuffer(tally), RowGroupBuffer(tally)
        taken.add(_batch([1, 2]))
        cleared.add(_batch([3]))
        cleared.add(_batch([]))
        assert tally.nbytes == taken.nbytes + cleared.nbytes > 0
        taken.take(SCHEMA, _add_names)
        assert tally.nbytes == cleared.nbytes
        cleared.clear()
        assert tally.nbytes == 0
