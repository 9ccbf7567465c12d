"""An in-progress Parquet file: open -> write_row_group ... -> commit (close, fsync, publish) | abort.

Each write_row_group call writes exactly one row group (one `write_table` call), on the writer
thread; commit first waits for every queued row group, then writes the footer with the segment's
key-value metadata. Columns are written for every common reader: the codec
from the settings, statistics on (except on JSON text), dictionary encoding only on columns where
it tends to pay, with a page-size limit that makes high-cardinality columns fall back to plain.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial

import pyarrow as pa
import pyarrow.parquet as pq

from consumer.errors import StorageError
from consumer.storage import PendingFile
from consumer.write_queue import WriteQueue

KIB = 1024


@dataclass(frozen=True, slots=True)
class WriterOptions:
    """How columns are encoded."""

    compression: str = "zstd"
    compression_level: int | None = None
    dictionary_page_size_limit: int = 256 * KIB


def dictionary_pays(field: pa.Field) -> bool:
    """Dictionary encoding for strings and integers that repeat; never for offsets, times or JSON."""
    if field.name in {"_offset", "_timestamp", "_extra"}:
        return False
    return bool(pa.types.is_string(field.type) or pa.types.is_integer(field.type))


def statistics_pay(field: pa.Field) -> bool:
    """Min/max statistics help pruning on everything but JSON text."""
    return not isinstance(field.type, pa.JsonType)


@contextmanager
def _write_errors(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise StorageError(f"cannot write {what}: {exc}") from exc


class ParquetFile:
    """One output file under construction; knows its bytes on disk, rows and row groups."""

    def __init__(
        self, pending: PendingFile, schema: pa.Schema, options: WriterOptions, label: str, writes: WriteQueue
    ) -> None:
        self._pending = pending
        self._label = label
        self._writes = writes
        self._waiting: list[tuple[Future[None], int]] = []
        self.rows = 0
        self.row_groups = 0
        self.bytes_written = 0  # on disk; updated by the writer thread after each row group
        with _write_errors(label):
            self._writer = pq.ParquetWriter(
                pending.sink,
                schema,
                compression=options.compression,
                compression_level=options.compression_level,
                use_dictionary=[field.name for field in schema if dictionary_pays(field)],
                write_statistics=[field.name for field in schema if statistics_pay(field)],
                dictionary_pagesize_limit=options.dictionary_page_size_limit,
            )

    @property
    def schema(self) -> pa.Schema:
        return self._writer.schema

    def write_row_group(self, table: pa.Table) -> None:
        """Queue the table to be written as exactly one row group; an earlier write's failure is raised."""
        self._raise_failed_writes()
        self._waiting.append((self._writes.submit(partial(self._write, table), table.nbytes), table.nbytes))
        self.rows += table.num_rows
        self.row_groups += 1

    def _write(self, table: pa.Table) -> None:
        """On the writer thread."""
        with _write_errors(self._label):
            self._writer.write_table(table, row_group_size=max(1, table.num_rows))
            self.bytes_written = int(self._pending.sink.tell())

    @property
    def in_flight_bytes(self) -> int:
        """Arrow bytes of this file's row groups queued and not yet on disk."""
        return sum(nbytes for future, nbytes in self._waiting if not future.done())

    def _raise_failed_writes(self) -> None:
        done = [future for future, _ in self._waiting if future.done()]
        self._waiting = [(future, nbytes) for future, nbytes in self._waiting if not future.done()]
        for future in done:
            future.result()

    def _settle(self) -> None:
        """Wait for every queued row group; raise the first failure."""
        waiting, self._waiting = self._waiting, []
        for future, _ in waiting:
            future.result()

    def commit(self, metadata: Mapping[str, str]) -> int:
        """Write the footer with metadata, make the file durable and visible; return its size."""
        self._settle()
        with _write_errors(self._label):
            self._writer.add_key_value_metadata(dict(metadata))
            self._writer.close()
        return self._pending.commit()

    def abort(self) -> None:
        """Discard the file. The writer is closed first so that no handle stays open."""
        with suppress(Exception):  # the file is being discarded: a failed write changes nothing
            self._settle()
        with suppress(OSError, StorageError):  # the footer may go to a sink whose upload failed
            self._writer.close()
        self._pending.abort()
