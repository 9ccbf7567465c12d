"""Batches converted while their file was open, brought to the file's final schema.

A batch is converted against the columns its file had at that moment. By the time the file's
first row group is written, columns may have been added (their values are in the batch's
`_extra`), an int64 column may have widened to float64, or another member of the group may have
claimed a column with another kind (see column_registry.py). Each column is then cast when that
is exact, or rebuilt value by value: values that fit the final kind go to the column, the others
to `_extra` under their key. Nothing is dropped.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa

from consumer.convert import extra_text
from consumer.schema import EXTRA_COLUMN, Kind, accepts

JSON_TYPE = Kind.JSON.arrow_type


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch in the given schema, every value kept (in its column or in `_extra`)."""
    if batch.schema.equals(schema):
        return batch
    arrays: dict[str, pa.Array] = {}
    rebuild: dict[str, Kind] = {}
    for field in schema:
        if field.name == EXTRA_COLUMN:
            continue
        column = _exact(batch, field)
        if column is not None:
            arrays[field.name] = column
        else:
            rebuild[field.name] = _kind(field)
    if rebuild:
        arrays.update(_rebuild(batch, rebuild))
    else:
        arrays[EXTRA_COLUMN] = batch.column(EXTRA_COLUMN)
    return pa.RecordBatch.from_arrays([arrays[field.name] for field in schema], schema=schema)


def _kind(field: pa.Field) -> Kind:
    kind = Kind.of_arrow(field.type)
    if kind is None:
        raise ValueError(f"column {field.name!r} has a type the archiver does not write: {field.type}")
    return kind


def _exact(batch: pa.RecordBatch, field: pa.Field) -> pa.Array | None:
    """The batch's column in the field's type when that needs no value moved, else None."""
    if field.name not in batch.schema.names:
        return None
    column = batch.column(field.name)
    if column.type == field.type:
        return column
    if column.type == pa.int64() and field.type == pa.float64():
        try:
            return column.cast(field.type, safe=True)  # exact for |x| <= 2**53, else it raises
        except pa.ArrowInvalid:
            return None
    return None


def _rebuild(batch: pa.RecordBatch, kinds: dict[str, Kind]) -> dict[str, pa.Array]:
    """The columns in `kinds` and `_extra`, rebuilt from the batch's values, row by row."""
    extras = [
        None if text is None else orjson.loads(text)
        for text in batch.column(EXTRA_COLUMN).storage.to_pylist()
    ]
    columns: dict[str, list[Any]] = {}
    for name, kind in kinds.items():
        current = _values(batch, name)
        stored: list[Any] = []
        for row, in_column in enumerate(current):
            extra = extras[row]
            value = extra.pop(name, None) if in_column is None and extra is not None else in_column
            if value is None or accepts(kind, value):
                stored.append(None if value is None else _stored(kind, value))
            else:
                extras[row] = {**(extra or {}), name: value}
                stored.append(None)
        columns[name] = stored
    result = {name: _typed_array(values, kinds[name]) for name, values in columns.items()}
    texts = [extra_text(extra) if extra else None for extra in extras]
    result[EXTRA_COLUMN] = pa.ExtensionArray.from_storage(JSON_TYPE, pa.array(texts, pa.string()))
    return result


def _values(batch: pa.RecordBatch, name: str) -> list[Any]:
    """A column's values as the JSON values they came from (JSON text parsed), or nulls if absent."""
    if name not in batch.schema.names:
        return [None] * batch.num_rows
    column = batch.column(name)
    if isinstance(column.type, pa.JsonType):
        return [None if text is None else orjson.loads(text) for text in column.storage.to_pylist()]
    return list(column.to_pylist())


def _stored(kind: Kind, value: Any) -> Any:
    if kind is Kind.JSON:
        return orjson.dumps(value)
    if kind is Kind.FLOAT64:
        return float(value)
    return value


def _typed_array(values: list[Any], kind: Kind) -> pa.Array:
    if kind is Kind.JSON:
        return pa.ExtensionArray.from_storage(JSON_TYPE, pa.array(values, pa.string()))
    return pa.array(values, kind.arrow_type)
