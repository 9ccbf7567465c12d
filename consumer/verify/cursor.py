"""A file's `_offset` column walked in step with the topic's records, a window of rows at a time.

The column is ascending (the file checks make sure before a cursor is built), so matching a
stream of ascending offsets is a merge: rows passed over without a matching record are counted
as unmatched (offsets the topic no longer has). Only one window of Python ints is alive at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from consumer.storage import ArchiveStorage
from consumer.verify.files import OFFSET_COLUMN, ArchivedFile

WINDOW_ROWS = 65_536


class RowCursor:
    """Finds the row holding each offset of an ascending stream of offsets."""

    def __init__(self, offsets: pa.Array) -> None:
        self._offsets = offsets
        self._window: list[int] = []
        self._base = 0  # row index of the window's first entry
        self._position = 0  # within the window
        self.unmatched = 0

    def match(self, offset: int) -> int | None:
        """The index of the row holding this offset, or None; smaller rows are passed as unmatched."""
        head = self._head()
        while head is not None and head < offset:
            self._position += 1
            self.unmatched += 1
            head = self._head()
        if head != offset:
            return None
        self._position += 1
        return self._base + self._position - 1

    def finish(self) -> int:
        """Count the rows never matched; return the total of unmatched rows."""
        remaining = len(self._offsets) - self._base - self._position
        self.unmatched += remaining
        self._base, self._position, self._window = len(self._offsets), 0, []
        return self.unmatched

    def _head(self) -> int | None:
        if self._position >= len(self._window):
            self._base += len(self._window)
            self._position = 0
            self._window = self._offsets.slice(self._base, WINDOW_ROWS).to_pylist()
        return self._window[self._position] if self._window else None


@dataclass(slots=True)
class FileCursor:
    """A file of a segment with its cursor, and the quarantine reasons when it is a quarantine file."""

    file: ArchivedFile
    cursor: RowCursor
    reasons: pa.Array | None

    def reason(self, row: int) -> str | None:
        return None if self.reasons is None else str(self.reasons[row].as_py())


def open_cursor(storage: ArchiveStorage, file: ArchivedFile, with_reasons: bool) -> FileCursor:
    """Load a file's `_offset` column (and `reason`, for quarantine files)."""
    columns = [OFFSET_COLUMN, "reason"] if with_reasons else [OFFSET_COLUMN]
    with storage.open_input(file.name.path) as source, pq.ParquetFile(source) as parquet:
        table = parquet.read(columns=columns)
    reasons = table.column("reason").combine_chunks() if with_reasons else None
    return FileCursor(file, RowCursor(table.column(OFFSET_COLUMN).combine_chunks()), reasons)
