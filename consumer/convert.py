"""Decoded rows -> one Arrow RecordBatch in a file's schema, column by column.

Each typed column is built from one Python list with a single pyarrow call when every value has
the column's type (the common case); otherwise values are checked one by one and those that do
not fit move to `_extra`. Keys without a column go to `_extra` too, as one JSON object per row.
Rows that cannot be represented exactly are rejected rather than altered: nesting deeper than
JSON text can encode, and integers beyond 64 bits, which orjson reads as rounded floats (found by
scanning float columns and JSON text for huge magnitudes, then confirmed on the raw bytes).

The common path uses no Arrow compute function: loading Arrow's compute module and its function
registry costs about 11 MiB of resident memory, which a process that never needs it should not
carry. Numeric bounds are read from the arrays' value buffers instead (pyarrow loads compute by
itself for the rare paths that filter a batch).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import orjson
import pyarrow as pa

from consumer.records import HUGE_INTEGER_DETAIL, DecodedBatch, Reason, Rejected, holds_huge_integer
from consumer.schema import (
    EXACT_FLOAT_INT,
    EXTRA_COLUMN,
    INT64_MAX,
    INT64_MIN,
    FileSchema,
    Kind,
    TopicSchema,
    accepts,
    choose_kind,
    json_type_name,
)

TIMESTAMP = pa.timestamp("us", tz="UTC")
# A record's Kafka headers in order, as they came: keys may repeat, a value may be null.
HEADERS_TYPE = pa.list_(
    pa.struct([pa.field("key", pa.string(), nullable=False), pa.field("value", pa.binary())])
)
METADATA_TYPES: dict[str, pa.DataType] = {
    "_partition": pa.int32(),
    "_offset": pa.int64(),
    "_timestamp": TIMESTAMP,
    "_key": pa.binary(),
    "_headers": HEADERS_TYPE,
}
JSON_TYPE = Kind.JSON.arrow_type
NONE_TYPE = type(None)
# orjson writes floats of magnitude >= 1e16 with an exponent ("1.8446744073709552e+19"); an
# integer literal beyond 64 bits becomes such a float (>= 9.2e18), so JSON text holding a number
# with an exponent of 18 or more is re-checked against the raw record.
HUGE_NUMBER_IN_JSON = re.compile(r"[0-9]e\+(?:1[89]|[2-9][0-9]|[1-3][0-9][0-9])(?:[,\]}]|$)")
# Kinds whose pyarrow conversion would silently alter some Python types: the types allowed as-is.
_SILENT_CONVERSIONS: dict[Kind, set[type]] = {Kind.INT64: {int}, Kind.FLOAT64: {int, float}}


def metadata_fields(names: Iterable[str]) -> list[pa.Field]:
    return [pa.field(name, METADATA_TYPES[name]) for name in names]


@dataclass(slots=True)
class Conversion:
    """The converted rows (None when every row was rejected) and the rejected records."""

    batch: pa.RecordBatch | None
    rejected: list[Rejected] = field(default_factory=list)


@dataclass(slots=True)
class _Misfits:
    """Per row, the key/values that go to `_extra`, and rows that cannot be archived at all.

    Under a fixed schema (`strict`), a value that does not fit its column rejects its record
    instead, and with `reject_unknown` so does a key without a column.
    """

    strict: bool = False
    reject_unknown: bool = False
    extra: dict[int, dict[str, Any]] = field(default_factory=dict)
    failed: dict[int, tuple[Reason, str]] = field(default_factory=dict)

    def move(self, row: int, key: str, value: Any, kind: Kind) -> None:
        if self.strict:
            detail = f"{key!r} holds a JSON {json_type_name(value)}, the schema says {kind.value}"
            self.failed.setdefault(row, (Reason.SCHEMA_MISMATCH, detail))
        else:
            self.extra.setdefault(row, {})[key] = value

    def unwritable(self, row: int, exc: Exception) -> None:
        self.failed[row] = (Reason.UNCONVERTIBLE, f"cannot be written as JSON text: {exc}")

    def unknown(self, row: int, keys: Iterable[str]) -> None:
        names = sorted(keys)
        shown = ", ".join(repr(name) for name in names[:5]) + (", ..." if len(names) > 5 else "")
        self.failed.setdefault(row, (Reason.UNKNOWN_KEY, f"keys not in the schema: {shown}"))


class RowConverter:
    """Converts one partition's decoded rows against its open file's schema and its topic's registry."""

    def __init__(self, metadata_columns: Iterable[str]) -> None:
        self._metadata = tuple(metadata_columns)

    def convert(self, decoded: DecodedBatch, file: FileSchema, topic: TopicSchema) -> Conversion:
        rows = decoded.rows
        if not rows:
            return Conversion(None)
        by_key = _exactly_the_columns(rows, list(file.columns))
        if by_key is not None:
            topic.observe_alike(by_key, len(rows))
            present = set(by_key)
        else:
            topic.observe(rows)
            present = set().union(*rows)
            if not file.frozen:
                _admit_keys(rows, present, file, topic)
            by_key = _values_by_key(rows, [key for key in file.columns if key in present])
        fixed = topic.fixed
        misfits = _Misfits(
            strict=fixed is not None, reject_unknown=fixed is not None and fixed.unknown_keys == "quarantine"
        )
        arrays: list[pa.Array] = []
        for key, kind in file.columns.items():
            if key in present:
                values = by_key[key]
                types = set(map(type, values)) if kind in _SILENT_CONVERSIONS else None
                array = _column(key, _kind_for(key, kind, values, types, file, topic), values, types, misfits)
                if array.type == pa.int64() and topic.may_widen(key):  # fixed columns never widen
                    topic.note_integers(key, _largest_magnitude(array, values, types))
                arrays.append(array)
            else:
                arrays.append(pa.nulls(len(rows), kind.arrow_type))
        arrays.append(_extra_column(rows, present.difference(file.columns), file.columns.keys(), misfits))
        _find_huge_integers(decoded, file.columns, arrays, misfits)
        names = [*self._metadata, *file.columns, EXTRA_COLUMN]
        batch = pa.RecordBatch.from_arrays([*self._metadata_arrays(decoded, misfits), *arrays], names=names)
        return _without_failed_rows(batch, decoded, misfits)

    def _metadata_arrays(self, decoded: DecodedBatch, misfits: _Misfits) -> list[pa.Array]:
        count = len(decoded.rows)
        builders = {
            "_partition": lambda: pa.repeat(pa.scalar(decoded.tp.partition, pa.int32()), count),
            "_offset": lambda: pa.array(decoded.offsets, pa.int64()),
            "_timestamp": lambda: _timestamps(decoded, misfits),
            "_key": lambda: pa.array(decoded.keys, pa.binary()),
            "_headers": lambda: (
                pa.array(decoded.headers, HEADERS_TYPE)
                if decoded.headers is not None
                else pa.nulls(count, HEADERS_TYPE)
            ),
        }
        return [builders[name]() for name in self._metadata]


def _timestamps(decoded: DecodedBatch, misfits: _Misfits) -> pa.Array:
    """The `_timestamp` column; a record whose timestamp it cannot hold goes to the quarantine."""
    array, beyond = timestamp_array(decoded.timestamps_ms)
    for row in beyond:
        detail = timestamp_beyond_detail(decoded.timestamps_ms[row])
        misfits.failed.setdefault(row, (Reason.TIMESTAMP_OUT_OF_RANGE, detail))
    return array


def _exactly_the_columns(rows: list[dict[str, Any]], columns: list[str]) -> dict[str, Sequence[Any]] | None:
    """Each column's values when every row has exactly the file's columns as keys (the common
    case), else None. Checked at C speed: every row has as many keys as there are columns, and
    transposing the rows finds every column in every row."""
    if len(columns) < 2 or set(map(len, rows)) != {len(columns)}:
        return None
    return _transposed(rows, columns)


def _values_by_key(rows: list[dict[str, Any]], keys: list[str]) -> dict[str, Sequence[Any]]:
    """Each key's values, one per row, None where a row lacks the key."""
    if len(keys) > 1 and (by_key := _transposed(rows, keys)) is not None:
        return by_key
    return {key: [row.get(key) for row in rows] for key in keys}


def _transposed(rows: list[dict[str, Any]], keys: list[str]) -> dict[str, Sequence[Any]] | None:
    """Each key's values in one pass at C speed (at least two keys), or None if a row lacks one."""
    try:
        return dict(zip(keys, zip(*map(itemgetter(*keys), rows), strict=True), strict=True))
    except KeyError:
        return None


def _admit_keys(rows: list[dict[str, Any]], present: set[str], file: FileSchema, topic: TopicSchema) -> None:
    """While a file is open, give it every present key that has, or now earns, a topic column.

    New columns are ordered as the keys appear in the first row, then by name.
    """
    first_row = {key: index for index, key in enumerate(rows[0])}
    for key in sorted(
        present.difference(file.columns), key=lambda name: (first_row.get(name, len(first_row)), name)
    ):
        kind = topic.kind(key)
        if kind is None and topic.promotable(key):
            kind = choose_kind([row.get(key) for row in rows])
            if kind is not None:
                topic.register(key, kind)
        if kind is not None:
            file.admit(key, kind)


def _kind_for(
    key: str, kind: Kind, values: Sequence[Any], types: set[type] | None, file: FileSchema, topic: TopicSchema
) -> Kind:
    """The kind to build with: follows a widening made elsewhere, or widens when floats meet ints.

    `types` are the values' types, given for the kinds in _SILENT_CONVERSIONS.
    """
    registered = topic.kind(key)
    if not file.frozen and registered is not None and registered is not kind:
        file.retype(key, registered)
        return registered
    widens = kind is Kind.INT64 and not file.frozen and types is not None and float in types
    if widens and _exact_as_floats(values) and topic.widen(key):  # only if every int seen so far is exact
        file.retype(key, Kind.FLOAT64)
        return Kind.FLOAT64
    return kind


def timestamp_array(milliseconds: Sequence[int | None]) -> tuple[pa.Array, list[int]]:
    """Kafka timestamps (ms) as a microsecond timestamp column, and the indices of those it cannot
    hold (beyond about 292,000 years from 1970; a broker takes any 64-bit value unless its topic
    limits them), which are null in it. A missing timestamp is null too."""
    micros = [None if value is None else value * 1000 for value in milliseconds]
    try:
        return pa.array(micros, TIMESTAMP), []
    except OverflowError:
        beyond = [
            index
            for index, micro in enumerate(micros)
            if micro is not None and not accepts(Kind.INT64, micro)
        ]
        for index in beyond:
            micros[index] = None
        return pa.array(micros, TIMESTAMP), beyond


def timestamp_beyond_detail(timestamp_ms: int | None) -> str:
    return f"its Kafka timestamp, {timestamp_ms} ms, is beyond what a timestamp column holds"


def _values(array: pa.Array) -> memoryview[int] | memoryview[float]:
    """The value buffer of an int64 or float64 array as Python numbers; null slots read 0.

    (Arrow's builders write zero for a null value, and only arrays built by pa.array get here.)
    """
    width = array.type.bit_width // 8
    start = array.offset * width
    data = memoryview(array.buffers()[1])[start : start + len(array) * width]
    return data.cast("q" if pa.types.is_integer(array.type) else "d")


def _largest_magnitude(array: pa.Array, values: Sequence[Any], types: set[type] | None) -> int:
    """The largest magnitude in an int64 column. Read from the Python values when the column holds
    them all (all ints, none moved to `_extra`): about half the time of reading the array back."""
    numbers = values if types == {int} and array.null_count == 0 else _values(array)
    if not len(numbers):
        return 0
    low, high = min(numbers), max(numbers)
    return int(max(high, -low))


def _exact_as_floats(values: Sequence[Any]) -> bool:
    return all(type(value) is not int or -EXACT_FLOAT_INT <= value <= EXACT_FLOAT_INT for value in values)


def _column(
    key: str, kind: Kind, values: Sequence[Any], types: set[type] | None, misfits: _Misfits
) -> pa.Array:
    """One typed column; values that do not fit are replaced by null and moved to `_extra`.

    pyarrow converts strings and booleans strictly and integers into float64 exactly (or raises),
    so only two silent conversions need a look at the value types first: floats truncated into
    int64, and booleans turned into 1.0 in float64.
    """
    if kind is Kind.JSON:
        return _json_column(values, misfits)
    if kind in _SILENT_CONVERSIONS:
        value_types = (types if types is not None else set(map(type, values))) - {NONE_TYPE}
        strict = value_types <= _SILENT_CONVERSIONS[kind]
    else:
        strict = True
    if strict:
        try:
            return pa.array(values, kind.arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # some value does not fit: sort them one by one
    kept: list[Any] = []
    for row, value in enumerate(values):
        if value is None or accepts(kind, value):
            kept.append(float(value) if kind is Kind.FLOAT64 and value is not None else value)
        else:
            kept.append(None)
            misfits.move(row, key, value, kind)
    return pa.array(kept, kind.arrow_type)


def _json_column(values: Sequence[Any], misfits: _Misfits) -> pa.Array:
    dumps = orjson.dumps
    try:
        texts = [None if value is None else dumps(value) for value in values]
    except orjson.JSONEncodeError:
        texts = [_dump_or_fail(row, value, misfits) for row, value in enumerate(values)]
    return pa.ExtensionArray.from_storage(JSON_TYPE, pa.array(texts, pa.string()))


def _dump_or_fail(row: int, value: Any, misfits: _Misfits) -> bytes | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        misfits.unwritable(row, exc)
        return None


def extra_text(members: dict[str, Any]) -> bytes:
    """An `_extra` object as JSON text. Written value by value when the object as a whole is one
    level too deep for orjson, so that a value is kept exactly when it could be a column's; raises
    orjson.JSONEncodeError only when a value itself cannot be written."""
    try:
        return orjson.dumps(members)
    except orjson.JSONEncodeError:
        pass
    written = [orjson.dumps(key) + b":" + orjson.dumps(value) for key, value in members.items()]
    return b"{" + b",".join(written) + b"}"


def _dump_extra(row: int, leftover: dict[str, Any], misfits: _Misfits) -> bytes | None:
    try:
        return extra_text(leftover)
    except orjson.JSONEncodeError as exc:
        misfits.unwritable(row, exc)
        return None


def _extra_column(
    rows: list[dict[str, Any]], loose_keys: set[str], columns: Iterable[str], misfits: _Misfits
) -> pa.Array:
    """Per row, the JSON object of non-null values without a column plus the misfits; else null."""
    if not loose_keys and not misfits.extra:
        return pa.ExtensionArray.from_storage(JSON_TYPE, pa.nulls(len(rows), pa.string()))
    typed = set(columns)
    texts: list[bytes | None] = []
    for index, row in enumerate(rows):
        leftover = misfits.extra.get(index)
        if not row.keys() <= typed:
            loose = {key: value for key, value in row.items() if key not in typed and value is not None}
            if loose and misfits.reject_unknown:
                misfits.unknown(index, loose)
                texts.append(None)
                continue
            leftover = {**loose, **leftover} if leftover else loose
        texts.append(_dump_extra(index, leftover, misfits) if leftover else None)
    return pa.ExtensionArray.from_storage(JSON_TYPE, pa.array(texts, pa.string()))


def _find_huge_integers(
    decoded: DecodedBatch, columns: dict[str, Kind], arrays: list[pa.Array], misfits: _Misfits
) -> None:
    """Reject rows whose raw JSON holds an integer beyond 64 bits (read as a rounded float)."""
    kinds = [*columns.values(), Kind.JSON]
    suspects: set[int] = set()
    for kind, array in zip(kinds, arrays, strict=True):
        if kind is Kind.FLOAT64 and array.null_count < len(array):
            values = _values(array)
            if min(values) <= INT64_MIN or max(values) >= INT64_MAX:
                suspects.update(row for row, value in enumerate(values) if abs(value) >= INT64_MAX)
        elif kind is Kind.JSON and array.null_count < len(array) and _may_hold_exponents(array):
            texts = array.storage.to_pylist()
            suspects.update(
                row for row, text in enumerate(texts) if text is not None and HUGE_NUMBER_IN_JSON.search(text)
            )
    for row in suspects.difference(misfits.failed):
        try:
            huge = holds_huge_integer(json.loads(decoded.values[row]))
        except RecursionError:
            misfits.failed[row] = (Reason.UNCONVERTIBLE, "nested too deeply to check its numbers exactly")
            continue
        if huge:
            misfits.failed[row] = (Reason.INTEGER_OUT_OF_RANGE, HUGE_INTEGER_DETAIL)


def _may_hold_exponents(array: pa.Array) -> bool:
    """Whether any JSON text of the column has "e+" (one memchr-speed scan over the whole data buffer)."""
    data = array.storage.buffers()[2]
    return data is not None and memoryview(data).tobytes().find(b"e+") >= 0


def _without_failed_rows(batch: pa.RecordBatch, decoded: DecodedBatch, misfits: _Misfits) -> Conversion:
    if not misfits.failed:
        return Conversion(batch)
    rejected = [
        Rejected(
            decoded.offsets[row],
            decoded.timestamps_ms[row],
            decoded.keys[row],
            decoded.values[row],
            reason,
            detail,
            decoded.headers[row] if decoded.headers is not None else None,
        )
        for row, (reason, detail) in sorted(misfits.failed.items())
    ]
    keep = pa.array([row not in misfits.failed for row in range(batch.num_rows)])
    kept = batch.filter(keep)
    return Conversion(kept if kept.num_rows else None, rejected)
