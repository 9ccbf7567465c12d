"""conform: batches converted while their file was open, brought to its final schema, nothing dropped."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa

from consumer.conform import conform
from consumer.schema import EXTRA_COLUMN, Kind

JSON = Kind.JSON.arrow_type


def _batch(columns: dict[str, tuple[Kind, list[Any]]], extras: list[dict[str, Any] | None]) -> pa.RecordBatch:
    arrays, names = [], []
    for name, (kind, values) in columns.items():
        stored = [None if v is None else orjson.dumps(v) for v in values] if kind is Kind.JSON else values
        array = pa.array(stored, pa.string() if kind is Kind.JSON else kind.arrow_type)
        arrays.append(pa.ExtensionArray.from_storage(JSON, array) if kind is Kind.JSON else array)
        names.append(name)
    texts = pa.array([orjson.dumps(e) if e else None for e in extras], pa.string())
    return pa.RecordBatch.from_arrays(
        [*arrays, pa.ExtensionArray.from_storage(JSON, texts)], [*names, EXTRA_COLUMN]
    )


def _schema(**kinds: Kind) -> pa.Schema:
    return pa.schema(
        [*(pa.field(name, kind.arrow_type) for name, kind in kinds.items()), pa.field(EXTRA_COLUMN, JSON)]
    )


def _rows(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = batch.to_pylist()
    for row in rows:
        row[EXTRA_COLUMN] = None if row[EXTRA_COLUMN] is None else orjson.loads(row[EXTRA_COLUMN])
    return rows


class TestConform:
    def test_a_batch_already_in_the_schema_is_returned_as_is(self) -> None:
        """No work when the schemas are equal."""
        batch = _batch({"a": (Kind.INT64, [1])}, [None])
        assert conform(batch, _schema(a=Kind.INT64)) is batch

    def test_a_column_admitted_later_is_filled_from_extra(self) -> None:
        """Values of a newly typed key move out of `_extra`; values that do not fit stay there."""
        batch = _batch({}, [{"n": 1, "z": True}, {"n": "one"}, None])
        assert _rows(conform(batch, _schema(n=Kind.INT64))) == [
            {"n": 1, EXTRA_COLUMN: {"z": True}},
            {"n": None, EXTRA_COLUMN: {"n": "one"}},
            {"n": None, EXTRA_COLUMN: None},
        ]

    def test_a_value_as_deep_as_a_json_column_allows_stays_in_extra_when_columns_are_rebuilt(
        self,
    ) -> None:
        """`_extra` adds a level above its values: an object holding a value that orjson can write
        alone, but not one level deeper, is written member by member, as conversion writes it."""
        deep: Any = 7
        for level in range(254):
            deep = {"n": deep} if level % 2 else [deep]
        text = b'{"deep":' + orjson.dumps(deep) + b',"n":1}'
        extras = pa.ExtensionArray.from_storage(JSON, pa.array([text], pa.string()))
        batch = pa.RecordBatch.from_arrays([extras], [EXTRA_COLUMN])
        conformed = conform(batch, _schema(n=Kind.INT64))
        assert conformed.column("n").to_pylist() == [1]
        assert orjson.loads(conformed.column(EXTRA_COLUMN).storage[0].as_py()) == {"deep": deep}

    def test_a_widened_column_is_cast_exactly(self) -> None:
        """An int64 column whose final kind is float64 is cast when every value is exact."""
        batch = _batch({"x": (Kind.INT64, [1, 2**53])}, [None, None])
        assert conform(batch, _schema(x=Kind.FLOAT64)).column("x").to_pylist() == [1.0, 2.0**53]

    def test_an_inexact_widening_moves_values_to_extra(self) -> None:
        """An int beyond 2**53 is not rounded into float64: it moves to `_extra` under its key."""
        batch = _batch({"x": (Kind.INT64, [1, 2**60 + 1])}, [None, None])
        assert _rows(conform(batch, _schema(x=Kind.FLOAT64))) == [
            {"x": 1.0, EXTRA_COLUMN: None},
            {"x": None, EXTRA_COLUMN: {"x": 2**60 + 1}},
        ]

    def test_a_kind_claimed_by_another_member_is_adopted_value_by_value(self) -> None:
        """A string column whose claimed kind is int64: nothing fits, every value moves to `_extra`."""
        batch = _batch({"x": (Kind.STRING, ["a", None])}, [{"y": 1}, None])
        assert _rows(conform(batch, _schema(x=Kind.INT64))) == [
            {"x": None, EXTRA_COLUMN: {"y": 1, "x": "a"}},
            {"x": None, EXTRA_COLUMN: None},
        ]

    def test_values_that_fit_a_json_column_become_json_text(self) -> None:
        """Any value fits a json column: strings become JSON strings, a misfit in `_extra` comes back."""
        batch = _batch({"x": (Kind.STRING, ["a", None])}, [None, {"x": [1, 2]}])
        conformed = conform(batch, _schema(x=Kind.JSON))
        assert conformed.column("x").storage.to_pylist() == ['"a"', "[1,2]"]
        assert conformed.column(EXTRA_COLUMN).null_count == 2
