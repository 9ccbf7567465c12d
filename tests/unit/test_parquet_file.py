"""The in-progress Parquet file: one row group per write, footer metadata, codec and encodings."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from consumer.naming import FileKind, SegmentFileName
from consumer.parquet_file import ParquetFile, WriterOptions
from consumer.storage import LocalStorage
from tests.support.parts import WRITES

NAME = SegmentFileName(FileKind.DATA, "events", 0, 0, date(2024, 1, 1))
JSON = pa.json_(pa.string())
TIMESTAMP = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        pa.field("_partition", pa.int32()),
        pa.field("_offset", pa.int64()),
        pa.field("_timestamp", TIMESTAMP),
        pa.field("_key", pa.binary()),
        pa.field("name", pa.string()),
        pa.field("count", pa.int64()),
        pa.field("payload", JSON),
        pa.field("_extra", JSON),
    ]
)
MOMENT = datetime(2024, 1, 1, 12, 30, 15, 123456, tzinfo=UTC)


def _table(first: int, count: int) -> pa.Table:
    offsets = list(range(first, first + count))
    micros = int(MOMENT.timestamp()) * 1_000_000 + MOMENT.microsecond
    return pa.table(
        [
            pa.array([0] * count, pa.int32()),
            pa.array(offsets, pa.int64()),
            pa.array([micros + i for i in offsets], pa.int64()).cast(TIMESTAMP),
            pa.array([b"k"] * count, pa.binary()),
            pa.array(["same"] * count, pa.string()),
            pa.array([i % 2 for i in offsets], pa.int64()),
            pa.ExtensionArray.from_storage(JSON, pa.array(['{"a":1}'] * count, pa.string())),
            pa.ExtensionArray.from_storage(JSON, pa.array(['{"b":2}'] * count, pa.string())),
        ],
        schema=SCHEMA,
    )


def _open(root: Path, options: WriterOptions | None = None) -> ParquetFile:
    pending = LocalStorage(root).create(NAME)
    return ParquetFile(pending, SCHEMA, options or WriterOptions(), NAME.path, WRITES)


def _committed(root: Path, options: WriterOptions | None = None) -> pq.FileMetaData:
    file = _open(root, options)
    file.write_row_group(_table(0, 20))
    file.commit({})
    return pq.ParquetFile(root / NAME.path).metadata


def _column(metadata: pq.FileMetaData, name: str) -> pq.ColumnChunkMetaData:
    return metadata.row_group(0).column(SCHEMA.get_field_index(name))


class TestParquetFile:
    def test_each_write_is_exactly_one_row_group(self, tmp_path: Path) -> None:
        """Each write_row_group call adds exactly one row group of the table's rows, even from many chunks."""
        file = _open(tmp_path)
        chunked = pa.concat_tables([_table(4, 3), _table(7, 2)])
        for table in (_table(0, 3), _table(3, 1), chunked):
            file.write_row_group(table)
        file.commit({})
        metadata = pq.ParquetFile(tmp_path / NAME.path).metadata
        assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [3, 1, 5]
        assert (file.row_groups, file.rows) == (3, 9)

    def test_commit_writes_the_metadata_into_the_footer(self, tmp_path: Path) -> None:
        """The key-value metadata given to commit() is in the finished file's footer."""
        file = _open(tmp_path)
        file.write_row_group(_table(0, 2))
        file.commit({"archiver.first_offset": "0", "archiver.kind": "data"})
        footer = pq.read_metadata(tmp_path / NAME.path).metadata
        assert footer[b"archiver.first_offset"] == b"0"
        assert footer[b"archiver.kind"] == b"data"

    def test_commit_publishes_the_file_with_its_size(self, tmp_path: Path) -> None:
        """commit() returns the size of the published file, and no in-progress file remains."""
        file = _open(tmp_path)
        file.write_row_group(_table(0, 2))
        size = file.commit({})
        assert size == (tmp_path / NAME.path).stat().st_size
        assert not (tmp_path / NAME.in_progress_path).exists()

    def test_rows_read_back(self, tmp_path: Path) -> None:
        """An independent reader (duckdb) reads back every row written, in order."""
        file = _open(tmp_path)
        file.write_row_group(_table(0, 3))
        file.write_row_group(_table(3, 2))
        file.commit({})
        query = "SELECT _offset, name FROM read_parquet(?)"
        found = duckdb.execute(query, [str(tmp_path / NAME.path)]).fetchall()
        assert found == [(i, "same") for i in range(5)]

    def test_abort_leaves_no_file(self, tmp_path: Path) -> None:
        """abort() after a row group leaves neither the in-progress nor the final file."""
        file = _open(tmp_path)
        file.write_row_group(_table(0, 2))
        file.abort()
        assert not (tmp_path / NAME.in_progress_path).exists()
        assert not (tmp_path / NAME.path).exists()

    def test_bytes_written_grows_with_each_row_group(self, tmp_path: Path) -> None:
        """bytes_written reports the bytes on disk, growing once the writer thread wrote a row group."""
        file = _open(tmp_path)
        before = file.bytes_written
        file.write_row_group(_table(0, 100))
        WRITES.wait_until_pending_at_most(0)
        assert file.bytes_written > before
        assert file.bytes_written == (tmp_path / NAME.in_progress_path).stat().st_size
        file.abort()

    @pytest.mark.parametrize(
        ("codec", "expected"), [("zstd", "ZSTD"), ("snappy", "SNAPPY"), ("none", "UNCOMPRESSED")]
    )
    def test_codec_is_the_configured_one(self, tmp_path: Path, codec: str, expected: str) -> None:
        """Every column chunk is compressed with the configured codec."""
        metadata = _committed(tmp_path, WriterOptions(compression=codec))
        group = metadata.row_group(0)
        assert {group.column(i).compression for i in range(group.num_columns)} == {expected}

    def test_zstd_is_the_default_codec(self, tmp_path: Path) -> None:
        """Default writer options compress with zstd."""
        assert _column(_committed(tmp_path), "name").compression == "ZSTD"

    def test_timestamps_are_microseconds(self, tmp_path: Path) -> None:
        """_timestamp is stored as UTC microseconds and reads back to the microsecond."""
        metadata = _committed(tmp_path)
        logical = metadata.schema.column(SCHEMA.get_field_index("_timestamp")).logical_type.to_json()
        assert '"timeUnit":"microseconds"' in logical.replace(" ", "")
        assert '"isAdjustedToUTC":true' in logical.replace(" ", "")
        query = "SELECT epoch_us(_timestamp) FROM read_parquet(?) WHERE _offset = 0"
        found = duckdb.execute(query, [str(tmp_path / NAME.path)]).fetchall()
        assert found == [(int(MOMENT.timestamp()) * 1_000_000 + MOMENT.microsecond,)]

    @pytest.mark.parametrize("name", ["_offset", "_timestamp", "_extra", "payload"])
    def test_offsets_times_and_json_are_not_dictionary_encoded(self, tmp_path: Path, name: str) -> None:
        """Offsets, timestamps, _extra and JSON columns have no dictionary page."""
        assert not _column(_committed(tmp_path), name).has_dictionary_page

    @pytest.mark.parametrize("name", ["name", "count", "_partition"])
    def test_strings_and_integers_are_dictionary_encoded(self, tmp_path: Path, name: str) -> None:
        """String and repeating integer columns are dictionary encoded."""
        assert _column(_committed(tmp_path), name).has_dictionary_page
