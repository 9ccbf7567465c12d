"""An in-progress Parquet file: open -> write_row_group ... -> commit (close, fsync, publish) | abort.

Each write_row_group call writes exactly one row group (one `write_table` call); the footer gets the
segment's key-value metadata at commit. Columns are written for every common reader: the codec
from the settings, statistics on (except on JSON text), dictionary encoding only on columns where
it tends to pay, with a page-size limit that makes high-cardinality columns fall back to plain.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from consumer.errors import StorageError
from consumer.storage import PendingFile

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

    def __init__(self, pending: PendingFile, schema: pa.Schema, options: WriterOptions, label: str) -> None:
        self._pending = pending
        self._label = label
        self.rows = 0
        self.row_groups = 0
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

    @property
    def bytes_written(self) -> int:
        return int(self._pending.sink.tell())

    def write_row_group(self, table: pa.Table) -> None:
        """Write the table as exactly one row group."""
        with _write_errors(self._label):
            self._writer.write_table(table, row_group_size=max(1, table.num_rows))
        self.rows += table.num_rows
        self.row_groups += 1

    def commit(self, metadata: Mapping[str, str]) -> int:
        """Write the footer with metadata, make the file durable and visible; return its size."""
        with _write_errors(self._label):
            self._writer.add_key_value_metadata(dict(metadata))
            self._writer.close()
        return self._pending.commit()

    def abort(self) -> None:
        """Discard the file. The writer is closed first so that no handle stays open."""
        with suppress(OSError):  # the file is being discarded; a failed footer write changes nothing
            self._writer.close()
        self._pending.abort()
