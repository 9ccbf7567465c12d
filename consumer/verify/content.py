"""Content checks for sampled records: an archived row must give back exactly what Kafka holds.

A data row is rebuilt from its typed columns (json-typed columns hold JSON text) plus its `_extra`
object, nulls dropped, and compared with the record's JSON object, top-level nulls dropped;
integers stored in float64 columns compare equal numerically, booleans never equal numbers. A
quarantine row must hold the record's exact bytes. `_key` and `_timestamp`, when present, must
match too. Rows are read one row group at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from consumer.config import RESERVED_COLUMNS
from consumer.schema import EXTRA_COLUMN, Kind, accepts
from consumer.verify.model import TopicRecord

Row = dict[str, Any]
JSON_TYPE = Kind.JSON.arrow_type


def read_rows(source: pa.NativeFile, indices: Iterable[int]) -> dict[int, Row]:
    """The rows at these indices of a file, with JSON columns parsed and timestamps in microseconds."""
    wanted = sorted(set(indices))
    found: dict[int, Row] = {}
    with pq.ParquetFile(source) as parquet:
        start = 0
        for group in range(parquet.metadata.num_row_groups):
            count = parquet.metadata.row_group(group).num_rows
            inside = [index for index in wanted if start <= index < start + count]
            if inside:
                table = parquet.read_row_group(group).take([index - start for index in inside])
                found.update(zip(inside, _plain_rows(table), strict=True))
            start += count
    return found


def _plain_rows(table: pa.Table) -> list[Row]:
    """Rows as Python values: JSON text parsed, timestamps as integer microseconds."""
    json_columns = {field.name for field in table.schema if field.type == JSON_TYPE}
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            table = table.set_column(index, field.name, table.column(index).cast(pa.int64()))
    return [
        {
            key: orjson.loads(value) if key in json_columns and value is not None else value
            for key, value in row.items()
        }
        for row in table.to_pylist()
    ]


def rebuild(row: Row) -> Row:
    """The JSON object a data row holds: typed columns plus `_extra`, nulls dropped."""
    rebuilt = {key: value for key, value in row.items() if key not in RESERVED_COLUMNS and value is not None}
    extra = row.get(EXTRA_COLUMN)
    if isinstance(extra, dict):
        rebuilt.update(extra)
    return {key: value for key, value in rebuilt.items() if value is not None}


def data_row_problems(record: TopicRecord, row: Row) -> list[str]:
    """How a data row differs from the record it came from (empty when it does not)."""
    try:
        original = orjson.loads(record.value or b"null")
    except orjson.JSONDecodeError:
        return ["the record is not valid JSON but is archived as a data row"]
    if not isinstance(original, dict):
        return ["the record is not a JSON object but is archived as a data row"]
    expected = {key: value for key, value in original.items() if value is not None}
    rebuilt = rebuild(row)
    differing = sorted(
        key for key in expected.keys() | rebuilt.keys() if not same_value(expected.get(key), rebuilt.get(key))
    )
    problems = [f"value differs at keys {', '.join(differing[:10])}"] if differing else []
    return problems + metadata_problems(record, row)


def quarantine_row_problems(record: TopicRecord, row: Row) -> list[str]:
    """How a quarantine row differs from the record it came from (empty when it does not)."""
    problems = (
        [] if row.get("value") == record.value else ["the quarantined bytes differ from the record's value"]
    )
    if row.get("_headers") is None:  # the archiver did not read headers, or there were none
        row = {name: value for name, value in row.items() if name != "_headers"}
    return problems + metadata_problems(record, row)


def metadata_problems(record: TopicRecord, row: Row) -> list[str]:
    """Where the row's `_key`, `_timestamp` or `_headers` (if it has them) differ from the record's."""
    problems = []
    if "_headers" in row:
        archived = row["_headers"]
        pairs = None if archived is None else [(header["key"], header["value"]) for header in archived]
        if pairs != record.headers:
            problems.append("_headers differ from the record's headers")
    if "_key" in row and row["_key"] != record.key:
        problems.append("_key differs from the record's key")
    if "_timestamp" in row:
        expected = None if record.timestamp_ms is None else record.timestamp_ms * 1000
        if expected is not None and not accepts(Kind.INT64, expected):
            expected = None  # beyond what the column holds: the archiver writes null (timestamp_out_of_range)
        if row["_timestamp"] != expected:
            problems.append(f"_timestamp is {row['_timestamp']} us, the record's is {record.timestamp_ms} ms")
    return problems


def same_value(left: Any, right: Any) -> bool:
    """JSON equality where integers equal floats of the same value but booleans equal only booleans."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same_value(left[key], right[key]) for key in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(same_value, left, right))
    return type(left) is type(right) and bool(left == right)
