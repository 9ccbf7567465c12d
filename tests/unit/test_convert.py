"""Row conversion: type rules, column admission, widening, rejects, metadata, conform, and the round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from consumer.conform import conform
from consumer.convert import Conversion, RowConverter, metadata_fields
from consumer.records import Decoder, RawBatch, RawHeaders, Reason, Rejected, TopicPartition
from consumer.schema import (
    EXACT_FLOAT_INT,
    EXTRA_COLUMN,
    INT64_MAX,
    INT64_MIN,
    FileSchema,
    FixedColumns,
    Kind,
    SchemaPolicy,
    TopicSchema,
)

TP = TopicPartition("events", 3)
BASE_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
DECODER = Decoder(max_value_bytes=1 << 20, quarantine_tombstones=True)
EAGER = SchemaPolicy(min_key_count=1, min_key_frequency=0.0)  # every key gets a column at once
NEVER = SchemaPolicy(min_key_count=2**62)  # no key earns a column
UINT64_MAX = 2**64 - 1
HUGE_LITERALS = [str(2**64), str(INT64_MIN - 1)]
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _encode(row: Any) -> bytes:
    """JSON text for a Python value; ints of any size are written as integer literals."""
    return row if isinstance(row, bytes) else json.dumps(row, ensure_ascii=False).encode()


def _nested(depth: int) -> Any:
    """The number 1 inside `depth` nested arrays."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _deep_row(depth: int, before: str = "") -> bytes:
    """A row whose key `a` holds `depth` nested arrays, written directly (json.dumps cannot go that deep)."""
    return f'{{{before}"a": {"[" * depth}1{"]" * depth}}}'.encode()


class _Archive:
    """One partition's open file: converts polls into it and reads the rows back in its final schema."""

    def __init__(
        self,
        policy: SchemaPolicy = EAGER,
        metadata: Sequence[str] = ("_offset",),
        topic: TopicSchema | None = None,
    ) -> None:
        self.topic = topic or TopicSchema(TP.topic, policy)
        self.file = self.topic.new_file_schema(metadata_fields(metadata))
        self.metadata = tuple(metadata)
        self.batches: list[pa.RecordBatch] = []
        self.rejected: list[Rejected] = []
        self._converter = RowConverter(metadata)
        self._next_offset = 0

    def add(self, rows: Sequence[Any]) -> Conversion:
        """Convert one poll of rows (Python values or raw JSON bytes) at the next offsets."""
        offsets = list(range(self._next_offset, self._next_offset + len(rows)))
        self._next_offset += len(rows)
        raw = RawBatch(
            TP,
            offsets,
            [BASE_MS + offset for offset in offsets],
            [f"k{offset}".encode() for offset in offsets],
            [_encode(row) for row in rows],
        )
        conversion = self._converter.convert(DECODER.decode(raw), self.file, self.topic)
        if conversion.batch is not None:
            self.batches.append(conversion.batch)
        self.rejected.extend(conversion.rejected)
        return conversion

    def freeze(self) -> None:
        """What a segment does when it writes the file's first row group."""
        self.file.freeze()
        for key, kind in self.file.columns.items():
            self.topic.fix(key, kind)

    def records(self) -> list[dict[str, Any]]:
        """Every archived row as read back from Arrow, in the file's final schema."""
        schema = self.file.arrow_schema()
        return [record for batch in self.batches for record in conform(batch, schema).to_pylist()]

    def objects(self) -> dict[int, dict[str, Any]]:
        """Every archived row rebuilt from its typed columns plus `_extra`, by offset."""
        kinds = {
            field.name: Kind.of_arrow(field.type)
            for field in self.file.arrow_schema()
            if field.name not in self.metadata and field.name != EXTRA_COLUMN
        }
        return {record["_offset"]: _rebuild(record, kinds) for record in self.records()}


def _rebuild(record: Mapping[str, Any], kinds: Mapping[str, Kind | None]) -> dict[str, Any]:
    text = record[EXTRA_COLUMN]
    rebuilt: dict[str, Any] = {} if text is None else orjson.loads(text)
    assert isinstance(rebuilt, dict)
    assert text is None or rebuilt, "_extra holds an empty object instead of null"
    for name, kind in kinds.items():
        value = record[name]
        if value is not None:
            assert name not in rebuilt, f"{name!r} is both in its column and in _extra"
            rebuilt[name] = orjson.loads(value) if kind is Kind.JSON else value
    return _without_nulls(rebuilt)


def _without_nulls(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if value is not None}


def _canonical(value: Any) -> Any:
    """JSON semantics for comparing: booleans are not numbers, and a number equals itself as int or float."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)  # Python compares int with float exactly: 2**60 + 1 != float(2**60)
    if isinstance(value, dict):
        return ("object", {key: _canonical(item) for key, item in value.items()})
    if isinstance(value, list):
        return ("array", [_canonical(item) for item in value])
    return (type(value).__name__, value)


def _assert_round_trip(archive: _Archive, originals: Mapping[int, Mapping[str, Any]]) -> None:
    rebuilt = archive.objects()
    assert sorted(rebuilt) == sorted(originals)
    for offset, original in originals.items():
        assert _canonical(rebuilt[offset]) == _canonical(_without_nulls(original)), f"offset {offset}"


def _holds_huge_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not INT64_MIN <= value <= UINT64_MAX
    if isinstance(value, dict):
        return any(_holds_huge_integer(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_huge_integer(item) for item in value)
    return False


def _column(archive: _Archive, name: str) -> list[Any]:
    return [record[name] for record in archive.records()]


def _extras(archive: _Archive) -> list[Any]:
    return [None if text is None else orjson.loads(text) for text in _column(archive, EXTRA_COLUMN)]


def _kinds(archive: _Archive) -> dict[str, Kind]:
    return dict(archive.file.columns)


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=6)
ODD_KEYS = ["a", "b", "B", "n", "N", "ß", "SS", "ss", "a.b", "a/b", "", "x" * 300, "k\n", "\U0001f600"]
RESERVED_LOOKALIKES = ["_offset", "_partition", "_timestamp", "_key", "_extra", "_EXTRA", "_Offset"]
KEYS = st.one_of(st.sampled_from(ODD_KEYS + RESERVED_LOOKALIKES), TEXT)
EDGE_INTS = [0, 1, -1, EXACT_FLOAT_INT - 1, EXACT_FLOAT_INT, EXACT_FLOAT_INT + 1, -EXACT_FLOAT_INT - 1]
EDGE_INTS += [INT64_MAX, INT64_MIN, INT64_MAX + 1, UINT64_MAX]
INTS = st.one_of(st.sampled_from(EDGE_INTS), st.integers(min_value=INT64_MIN, max_value=UINT64_MAX))
HUGE_INTS = st.one_of(
    st.sampled_from([UINT64_MAX + 1, INT64_MIN - 1, 10**30, -(10**30), 2**200]),
    st.integers(min_value=UINT64_MAX + 1, max_value=10**300),
    st.integers(max_value=INT64_MIN - 1, min_value=-(10**300)),
)
FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e300, -1e19, 1.8446744073709552e19, 9.3e18, 0.5]),
)


def _scalars(ints: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.booleans(), ints, FLOATS, TEXT)


def _json_values(ints: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    scalars = _scalars(ints)
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=3), st.dictionaries(KEYS, children, max_size=3)
        ),
        max_leaves=5,
    )


VALUES = _json_values(INTS)
ROWS = st.lists(st.dictionaries(KEYS, VALUES, max_size=5), min_size=1, max_size=8)
ROWS_WITH_HUGE_INTS = st.lists(
    st.dictionaries(KEYS, _json_values(st.one_of(INTS, HUGE_INTS)), max_size=5), min_size=1, max_size=8
)
# Polls share a few keys and mostly hold scalars, so columns meet values of other kinds across polls.
POLL_ROWS = st.dictionaries(
    st.one_of(st.sampled_from(["a", "b", "A"]), KEYS), st.one_of(_scalars(INTS), VALUES), max_size=4
)
POLLS = st.lists(st.lists(POLL_ROWS, min_size=1, max_size=5), min_size=1, max_size=4)
POLICIES = st.sampled_from(
    [
        EAGER,
        NEVER,
        SchemaPolicy(min_key_count=2, min_key_frequency=0.0),
        SchemaPolicy(max_columns=2, min_key_count=1, min_key_frequency=0.0),
        SchemaPolicy(),
    ]
)


class TestTypeRules:
    def test_natural_kinds_become_typed_columns(self) -> None:
        """bool, int, float, str, object and array get bool, int64, float64, string, json, json columns."""
        archive = _Archive()
        archive.add([{"b": True, "i": 7, "f": 1.5, "s": "x", "o": {"k": [1]}, "l": [1, "a"]}])
        schema = archive.file.arrow_schema()
        assert [schema.field(name).type for name in "bifsol"] == [
            pa.bool_(),
            pa.int64(),
            pa.float64(),
            pa.string(),
            pa.json_(pa.string()),
            pa.json_(pa.string()),
        ]
        record = archive.records()[0]
        assert [record[name] for name in "bifs"] == [True, 7, 1.5, "x"]
        assert (record["o"], record["l"], record[EXTRA_COLUMN]) == ('{"k":[1]}', '[1,"a"]', None)

    def test_booleans_never_land_in_an_int_column(self) -> None:
        """True in an int64 column goes to _extra, not in as 1."""
        archive = _Archive()
        archive.add([{"a": 1}, {"a": True}, {"a": False}])
        assert _kinds(archive) == {"a": Kind.INT64}
        assert _column(archive, "a") == [1, None, None]
        assert _extras(archive) == [None, {"a": True}, {"a": False}]

    def test_booleans_never_land_in_a_float_column(self) -> None:
        """True in a float64 column goes to _extra, not in as 1.0."""
        archive = _Archive()
        archive.add([{"a": 1.5}, {"a": True}])
        assert _kinds(archive) == {"a": Kind.FLOAT64}
        assert _column(archive, "a") == [1.5, None]
        assert _extras(archive) == [None, {"a": True}]

    def test_floats_are_never_truncated_into_a_fixed_int_column(self) -> None:
        """A float meeting an int64 column that a written file fixed goes to _extra whole."""
        archive = _Archive()
        archive.add([{"a": 1}])
        archive.freeze()
        archive.add([{"a": 2.7}, {"a": 3}])
        assert _kinds(archive) == {"a": Kind.INT64}
        assert _column(archive, "a") == [1, None, 3]
        assert _extras(archive) == [None, {"a": 2.7}, None]

    def test_float_column_takes_ints_up_to_2_53(self) -> None:
        """A float64 column holds ints within 2**53 exactly and sends larger ones to _extra."""
        archive = _Archive()
        archive.add([{"a": 0.5}, {"a": EXACT_FLOAT_INT}, {"a": -EXACT_FLOAT_INT}, {"a": EXACT_FLOAT_INT + 1}])
        assert _kinds(archive) == {"a": Kind.FLOAT64}
        assert _column(archive, "a") == [0.5, float(EXACT_FLOAT_INT), -float(EXACT_FLOAT_INT), None]
        assert _extras(archive) == [None, None, None, {"a": EXACT_FLOAT_INT + 1}]

    def test_int_column_holds_the_int64_range(self) -> None:
        """int64 limits are stored exactly; uint64-range ints go to _extra exactly."""
        archive = _Archive()
        archive.add([{"a": INT64_MAX}, {"a": INT64_MIN}, {"a": INT64_MAX + 1}, {"a": UINT64_MAX}])
        assert _kinds(archive) == {"a": Kind.INT64}
        assert _column(archive, "a") == [INT64_MAX, INT64_MIN, None, None]
        assert _extras(archive) == [None, None, {"a": INT64_MAX + 1}, {"a": UINT64_MAX}]

    def test_string_column_refuses_other_types(self) -> None:
        """Numbers, booleans, objects and arrays meeting a string column go to _extra."""
        archive = _Archive()
        archive.add([{"a": "x"}, {"a": 1}, {"a": True}, {"a": {"k": "v"}}, {"a": ["x"]}, {"a": 1.5}])
        assert _column(archive, "a") == ["x", None, None, None, None, None]
        assert [extra and extra["a"] for extra in _extras(archive)] == [None, 1, True, {"k": "v"}, ["x"], 1.5]

    def test_bool_column_refuses_other_types(self) -> None:
        """Numbers and strings meeting a bool column go to _extra, not in as truth values."""
        archive = _Archive()
        archive.add([{"a": False}, {"a": 1}, {"a": 0}, {"a": "true"}, {"a": 0.0}])
        assert _column(archive, "a") == [False, None, None, None, None]
        assert [extra and extra["a"] for extra in _extras(archive)] == [None, 1, 0, "true", 0.0]

    def test_json_column_takes_any_value_as_json_text(self) -> None:
        """Scalars meeting a json column are stored there as JSON text."""
        archive = _Archive()
        archive.add([{"a": {"k": 1}}, {"a": 2}, {"a": "s"}, {"a": True}, {"a": 1.5}, {"a": None}])
        assert _column(archive, "a") == ['{"k":1}', "2", '"s"', "true", "1.5", None]
        assert _extras(archive) == [None] * 6

    def test_misfits_keep_their_row_and_neighbours(self) -> None:
        """Only the value that does not fit moves; the row's other values and other rows stay typed."""
        archive = _Archive()
        archive.add([{"a": 1, "b": "x"}, {"a": "two", "b": "y"}, {"a": 3, "b": "z"}])
        assert _column(archive, "a") == [1, None, 3]
        assert _column(archive, "b") == ["x", "y", "z"]
        assert _extras(archive) == [None, {"a": "two"}, None]

    def test_nulls_read_back_as_absent(self) -> None:
        """A null is stored as a null column value and never written into _extra."""
        archive = _Archive()
        archive.add([{"a": 1, "b": None}, {"a": None, "c": None}])
        assert _column(archive, "a") == [1, None]
        assert _extras(archive) == [None, None]


class TestColumnAdmission:
    def test_registered_keys_join_an_open_file(self) -> None:
        """A key the topic already types gets a column in a new file even if not promotable."""
        topic = TopicSchema(TP.topic, NEVER)
        topic.register("a", Kind.STRING)
        archive = _Archive(topic=topic)
        archive.add([{"a": "x", "b": 1}])
        assert _kinds(archive) == {"a": Kind.STRING}
        assert _extras(archive) == [{"b": 1}]

    def test_keys_are_promoted_once_frequent_enough(self) -> None:
        """A key without a column gets one in the batch that brings it to min_key_count."""
        archive = _Archive(SchemaPolicy(min_key_count=3, min_key_frequency=0.0))
        archive.add([{"a": 1}, {"a": 2}])
        assert _kinds(archive) == {}
        archive.add([{"a": 3}])
        assert _kinds(archive) == {"a": Kind.INT64}
        assert archive.topic.kind("a") is Kind.INT64

    def test_rare_keys_stay_in_extra(self) -> None:
        """A key below min_key_frequency of the rows gets no column."""
        archive = _Archive(SchemaPolicy(min_key_count=1, min_key_frequency=0.5))
        archive.add([{"common": 1, "rare": 1}, {"common": 2}, {"common": 3}])
        assert _kinds(archive) == {"common": Kind.INT64}
        assert _extras(archive) == [{"rare": 1}, None, None]

    def test_frozen_file_sends_new_keys_to_extra(self) -> None:
        """After freeze(), even a key the topic has typed meanwhile stays out of the file."""
        archive = _Archive()
        archive.add([{"a": 1}])
        archive.freeze()
        archive.topic.register("b", Kind.INT64)
        archive.add([{"a": 2, "b": 3, "c": 4}])
        assert _kinds(archive) == {"a": Kind.INT64}
        assert archive.file.arrow_schema().names == ["_offset", "a", EXTRA_COLUMN]
        assert _extras(archive) == [None, {"b": 3, "c": 4}]

    def test_max_columns_is_a_hard_cap(self) -> None:
        """No more than max_columns keys ever become columns; the others stay in _extra."""
        policy = SchemaPolicy(max_columns=2, min_key_count=1, min_key_frequency=0.0)
        archive = _Archive(policy)
        archive.add([{"a": 1, "b": 2, "c": 3, "d": 4}])
        later = _Archive(topic=archive.topic)
        later.add([{"e": 5, "f": 6, "a": 7}])
        assert list(archive.topic.columns) == ["a", "b"]
        assert _extras(archive) == [{"c": 3, "d": 4}]
        assert _extras(later) == [{"e": 5, "f": 6}]

    def test_new_columns_follow_the_first_row_then_names(self) -> None:
        """Admitted columns are ordered as keys appear in the first row, then alphabetically."""
        archive = _Archive()
        archive.add([{"z": 1, "y": 1}, {"b": 1, "a": 1, "y": 2}])
        assert list(archive.file.columns) == ["z", "y", "a", "b"]

    @pytest.mark.parametrize(
        "key", ["", "x" * 256, "a\nb", "_partition", "_offset", "_timestamp", "_key", "_extra"]
    )
    def test_unfit_names_never_become_columns(self, key: str) -> None:
        """Reserved, empty, overlong and unprintable keys stay in _extra however frequent."""
        archive = _Archive(metadata=("_offset", "_partition"))
        archive.add([{key: index, "ok": 1} for index in range(6)])
        assert _kinds(archive) == {"ok": Kind.INT64}
        assert _extras(archive) == [{key: index} for index in range(6)]

    def test_case_fold_twins_stay_in_extra(self) -> None:
        """Of keys equal after case folding, only the first becomes a column."""
        archive = _Archive()
        archive.add([{"Name": "a", "name": "b", "straße": 1, "STRASSE": 2}])
        assert list(archive.file.columns) == ["Name", "straße"]
        assert _extras(archive) == [{"name": "b", "STRASSE": 2}]

    def test_case_fold_twins_of_reserved_columns_stay_in_extra(self) -> None:
        """Keys like `_EXTRA` or `_Offset` collide with the file's own columns and never become columns."""
        archive = _Archive(metadata=("_offset",))
        archive.add([{"_EXTRA": 1, "_Offset": 2}])
        assert archive.file.arrow_schema().names == ["_offset", EXTRA_COLUMN]
        assert _extras(archive) == [{"_EXTRA": 1, "_Offset": 2}]

    def test_high_cardinality_keys_never_become_columns(self) -> None:
        """One distinct key per row (sensor ids) stays in _extra under the default policy."""
        archive = _Archive(SchemaPolicy())
        for batch in range(8):
            archive.add([{"ts": index, f"sensor-{batch}-{index}": 0.5} for index in range(512)])
        assert list(archive.topic.columns) == ["ts"]
        assert _extras(archive)[:2] == [{"sensor-0-0": 0.5}, {"sensor-0-1": 0.5}]

    def test_keys_with_only_nulls_wait_for_a_value(self) -> None:
        """A key seen only as null gets no column until a value shows its kind."""
        archive = _Archive()
        archive.add([{"a": None}])
        assert _kinds(archive) == {}
        archive.add([{"a": "x"}])
        assert _kinds(archive) == {"a": Kind.STRING}

    def test_columns_absent_from_a_batch_are_null(self) -> None:
        """A file column missing from every row of a poll is a null column of its type."""
        archive = _Archive()
        archive.add([{"a": 1}])
        conversion = archive.add([{"b": "x"}])
        assert conversion.batch is not None
        assert conversion.batch.column("a").type == pa.int64()
        assert conversion.batch.column("a").to_pylist() == [None]

    @pytest.mark.parametrize("layout", ["every key", "sparse", "one key swapped"])
    def test_each_column_holds_its_keys_values_row_by_row(self, layout: str) -> None:
        """Values land in their own column and row whether every row has exactly the file's keys,
        some rows lack one, or some have as many keys but one of them new."""
        archive = _Archive()
        archive.add([{"a": 0, "b": "0", "c": 0.5}])
        rows: list[dict[str, Any]] = [
            {"c": index + 0.5, "a": index, "b": str(index)} for index in range(1, 300)
        ]
        for row in rows[::7]:
            if layout == "sparse":
                del row["b"]
            elif layout == "one key swapped":
                row["d"] = row.pop("b")
        conversion = archive.add(rows)
        assert conversion.batch is not None
        assert conversion.batch.column("a").to_pylist() == [row["a"] for row in rows]
        assert conversion.batch.column("b").to_pylist() == [row.get("b") for row in rows]
        assert conversion.batch.column("c").to_pylist() == [row["c"] for row in rows]
        if layout == "one key swapped":
            assert conversion.batch.column("d").to_pylist() == [row.get("d") for row in rows]

    def test_batch_schema_is_the_file_schema(self) -> None:
        """Each converted batch has exactly the file's Arrow schema at that moment."""
        archive = _Archive(metadata=("_partition", "_offset"))
        conversion = archive.add([{"a": 1, "b": {"c": 2}, "": 3}])
        assert conversion.batch is not None
        assert conversion.batch.schema.equals(archive.file.arrow_schema())


class TestWidening:
    def test_open_int_column_widens_when_floats_arrive(self) -> None:
        """An unfixed int64 column turns float64 and earlier batches are cast when conformed."""
        archive = _Archive()
        archive.add([{"a": 1}, {"a": -EXACT_FLOAT_INT}])
        archive.add([{"a": 2.5}, {"a": 3}])
        assert _kinds(archive) == {"a": Kind.FLOAT64}
        assert archive.topic.kind("a") is Kind.FLOAT64
        assert _column(archive, "a") == [1.0, -float(EXACT_FLOAT_INT), 2.5, 3.0]
        assert archive.file.arrow_schema().field("a").type == pa.float64()

    def test_no_widening_when_the_batch_holds_ints_beyond_2_53(self) -> None:
        """Ints that float64 cannot hold exactly keep the column int64; the floats go to _extra."""
        archive = _Archive()
        archive.add([{"a": 1}])
        archive.add([{"a": EXACT_FLOAT_INT + 1}, {"a": 2.5}])
        assert _kinds(archive) == {"a": Kind.INT64}
        assert _column(archive, "a") == [1, EXACT_FLOAT_INT + 1, None]
        assert _extras(archive) == [None, None, {"a": 2.5}]

    def test_an_int_beyond_int64_moved_to_extra_does_not_block_widening(self) -> None:
        """Only the ints the column holds count: one beyond int64 lives in _extra as exact JSON text."""
        archive = _Archive()
        archive.add([{"a": 1}, {"a": INT64_MAX + 6}])
        archive.add([{"a": 2.5}])
        assert _kinds(archive) == {"a": Kind.FLOAT64}
        assert _column(archive, "a") == [1.0, None, 2.5]
        assert _extras(archive) == [None, {"a": INT64_MAX + 6}, None]

    def test_no_widening_when_an_earlier_batch_held_ints_beyond_2_53(self) -> None:
        """Ints beyond 2**53 buffered in the open file also block widening, so nothing is rounded."""
        archive = _Archive()
        archive.add([{"a": 2**60 + 1}])
        archive.add([{"a": 2.5}])
        _assert_round_trip(archive, {0: {"a": 2**60 + 1}, 1: {"a": 2.5}})

    def test_no_widening_while_another_open_file_holds_ints_beyond_2_53(self) -> None:
        """Ints beyond 2**53 buffered in another open file of the topic also block widening."""
        first = _Archive()
        second = _Archive(topic=first.topic)
        second.add([{"a": 2**60 + 1}])
        first.add([{"a": 1}])
        first.add([{"a": 2.5}])
        second.add([{"a": 2}])
        _assert_round_trip(first, {0: {"a": 1}, 1: {"a": 2.5}})
        _assert_round_trip(second, {0: {"a": 2**60 + 1}, 1: {"a": 2}})

    def test_fixed_column_sends_floats_to_extra(self) -> None:
        """After fix(), a new open file keeps the int64 column and floats go to _extra."""
        first = _Archive()
        first.add([{"a": 1}])
        first.freeze()
        second = _Archive(topic=first.topic)
        second.add([{"a": 2.5}, {"a": 2}])
        assert _kinds(second) == {"a": Kind.INT64}
        assert _column(second, "a") == [None, 2]
        assert _extras(second) == [{"a": 2.5}, None]

    def test_open_file_follows_a_widening_made_by_another(self) -> None:
        """Another open file of the topic adopts the float64 kind and casts its earlier batches."""
        first = _Archive()
        second = _Archive(topic=first.topic)
        first.add([{"a": 1}])
        second.add([{"a": 2}])
        first.add([{"a": 1.5}])
        second.add([{"a": 3}])
        assert _kinds(second) == {"a": Kind.FLOAT64}
        assert _column(second, "a") == [2.0, 3.0]


class TestIntegerRange:
    @pytest.mark.parametrize("literal", HUGE_LITERALS)
    def test_huge_integer_in_a_float_column_is_rejected(self, literal: str) -> None:
        """An integer beyond 64 bits meeting a float64 column rejects its row."""
        archive = _Archive()
        archive.add([b'{"a": 1.5}', f'{{"a": {literal}}}'.encode(), b'{"a": 2.5}'])
        assert [entry.reason for entry in archive.rejected] == [Reason.INTEGER_OUT_OF_RANGE]
        assert _column(archive, "a") == [1.5, 2.5]

    @pytest.mark.parametrize("literal", HUGE_LITERALS)
    def test_huge_integer_without_a_column_is_rejected(self, literal: str) -> None:
        """An integer beyond 64 bits under a key that goes to _extra rejects its row."""
        archive = _Archive(NEVER)
        archive.add([b'{"a": 1}', f'{{"a": {literal}}}'.encode()])
        assert [entry.reason for entry in archive.rejected] == [Reason.INTEGER_OUT_OF_RANGE]
        assert _extras(archive) == [{"a": 1}]

    @pytest.mark.parametrize("literal", HUGE_LITERALS)
    def test_huge_integer_meeting_a_frozen_int_column_is_rejected(self, literal: str) -> None:
        """An integer beyond 64 bits meeting an int64 column (it moves to _extra) rejects its row."""
        archive = _Archive()
        archive.add([b'{"a": 1}'])
        archive.freeze()
        archive.add([f'{{"a": {literal}}}'.encode()])
        assert [entry.reason for entry in archive.rejected] == [Reason.INTEGER_OUT_OF_RANGE]

    @pytest.mark.parametrize("literal", HUGE_LITERALS)
    @pytest.mark.parametrize("policy", [EAGER, NEVER], ids=["json-column", "extra"])
    def test_huge_integer_nested_in_an_object_is_rejected(self, literal: str, policy: SchemaPolicy) -> None:
        """An integer beyond 64 bits inside an object rejects its row, in a json column or in _extra."""
        archive = _Archive(policy)
        archive.add([f'{{"a": {{"x": 1, "y": {literal}}}}}'.encode()])
        assert [entry.reason for entry in archive.rejected] == [Reason.INTEGER_OUT_OF_RANGE]

    @pytest.mark.parametrize("literal", HUGE_LITERALS)
    @pytest.mark.parametrize("policy", [EAGER, NEVER], ids=["json-column", "extra"])
    def test_huge_integer_nested_in_an_array_is_rejected(self, literal: str, policy: SchemaPolicy) -> None:
        """An integer beyond 64 bits inside an array rejects its row, in a json column or in _extra."""
        archive = _Archive(policy)
        archive.add([f'{{"a": [1, {literal}]}}'.encode()])
        assert [entry.reason for entry in archive.rejected] == [Reason.INTEGER_OUT_OF_RANGE]

    @pytest.mark.parametrize("literal", HUGE_LITERALS)
    def test_huge_integer_meeting_a_json_column_is_rejected(self, literal: str) -> None:
        """An integer beyond 64 bits stored as a json column's top-level value rejects its row."""
        archive = _Archive()
        archive.add([b'{"a": {"x": 1}}', f'{{"a": {literal}}}'.encode()])
        assert [entry.reason for entry in archive.rejected] == [Reason.INTEGER_OUT_OF_RANGE]
        assert _column(archive, "a") == ['{"x":1}']

    @pytest.mark.parametrize("policy", [EAGER, NEVER], ids=["columns", "extra"])
    def test_64_bit_limits_are_kept_exactly(self, policy: SchemaPolicy) -> None:
        """Integers at the int64 and uint64 limits are archived exactly, top-level and nested."""
        row = {
            "min": INT64_MIN,
            "max": INT64_MAX,
            "umax": UINT64_MAX,
            "nested": {"v": [UINT64_MAX, INT64_MIN]},
        }
        archive = _Archive(policy)
        archive.add([row])
        assert archive.rejected == []
        _assert_round_trip(archive, {0: row})

    @pytest.mark.parametrize("policy", [EAGER, NEVER], ids=["columns", "extra"])
    def test_large_floats_are_not_rejected(self, policy: SchemaPolicy) -> None:
        """Legitimate floats of huge magnitude (1e300, 1e19) are kept, top-level and nested."""
        archive = _Archive(policy)
        archive.add([b'{"f": 1e300, "g": -1.8446744073709552e19, "n": {"v": [1e19, -1e300]}, "m": 1.0e19}'])
        assert archive.rejected == []
        _assert_round_trip(
            archive, {0: {"f": 1e300, "g": -1.8446744073709552e19, "n": {"v": [1e19, -1e300]}, "m": 1e19}}
        )

    def test_rejected_row_keeps_its_record(self) -> None:
        """The rejected entry carries the record's offset, timestamp, key and raw bytes; neighbours stay."""
        archive = _Archive()
        bad = b'{"a": 18446744073709551616}'
        archive.add([b'{"a": 0.5}', bad, b'{"a": 1.5}'])
        assert archive.rejected == [
            Rejected(1, BASE_MS + 1, b"k1", bad, Reason.INTEGER_OUT_OF_RANGE, archive.rejected[0].detail)
        ]
        assert [record["_offset"] for record in archive.records()] == [0, 2]

    def test_all_rows_rejected_gives_no_batch(self) -> None:
        """When every row is rejected the conversion has no batch, only rejects."""
        archive = _Archive()
        conversion = archive.add([f'{{"a": {2**64}}}'.encode()])
        assert conversion.batch is None
        assert len(conversion.rejected) == 1


class TestUnconvertible:
    @pytest.mark.parametrize("depth", [300, 1000])
    @pytest.mark.parametrize("policy", [EAGER, NEVER], ids=["json-column", "extra"])
    def test_nesting_beyond_json_text_is_rejected(self, depth: int, policy: SchemaPolicy) -> None:
        """A row nested deeper than orjson can write is rejected as unconvertible; others stay."""
        archive = _Archive(policy)
        archive.add([{"a": [1]}, _deep_row(depth), {"a": [2]}])
        assert [(entry.offset, entry.reason) for entry in archive.rejected] == [(1, Reason.UNCONVERTIBLE)]
        _assert_round_trip(archive, {0: {"a": [1]}, 2: {"a": [2]}})

    @pytest.mark.parametrize("depth", [300, 1000])
    def test_deep_row_beside_a_large_float_is_rejected_not_a_crash(self, depth: int) -> None:
        """A deep row that also holds a float >= 2**63 is rejected as unconvertible, not an exception."""
        archive = _Archive()
        archive.add([{"f": 1.5}, _deep_row(depth, before='"f": 1e19, ')])
        assert [(entry.offset, entry.reason) for entry in archive.rejected] == [(1, Reason.UNCONVERTIBLE)]

    def test_moderate_nesting_is_kept(self) -> None:
        """Nesting well within orjson's limits is archived as JSON text."""
        archive = _Archive()
        archive.add([{"a": _nested(100)}])
        assert archive.rejected == []
        _assert_round_trip(archive, {0: {"a": _nested(100)}})


class TestMetadataColumns:
    def test_listed_metadata_columns_come_first_in_order(self) -> None:
        """Metadata columns appear as listed, before the data columns; _extra is last."""
        archive = _Archive(metadata=("_key", "_offset", "_timestamp", "_partition"))
        conversion = archive.add([{"a": 1, "b": "x"}])
        assert conversion.batch is not None
        assert conversion.batch.schema.names == [
            "_key",
            "_offset",
            "_timestamp",
            "_partition",
            "a",
            "b",
            "_extra",
        ]
        assert conversion.batch.schema.types[:4] == [
            pa.binary(),
            pa.int64(),
            pa.timestamp("us", tz="UTC"),
            pa.int32(),
        ]

    def test_only_listed_metadata_columns_are_present(self) -> None:
        """Without metadata columns a batch holds only data columns and _extra."""
        converter = RowConverter([])
        raw = RawBatch(TP, [5], [BASE_MS], [None], [b'{"a": 1}'])
        topic = TopicSchema(TP.topic, EAGER)
        conversion = converter.convert(DECODER.decode(raw), FileSchema(metadata_fields([])), topic)
        assert conversion.batch is not None
        assert conversion.batch.schema.names == ["a", EXTRA_COLUMN]

    def test_metadata_values(self) -> None:
        """Partition, offsets, keys and UTC timestamps from Kafka milliseconds; missing ones stay null."""
        converter = RowConverter(["_partition", "_offset", "_timestamp", "_key"])
        raw = RawBatch(TP, [10, 11], [BASE_MS + 1, None], [b"k", None], [b"{}", b'{"a": 1}'])
        file = FileSchema(metadata_fields(["_partition", "_offset", "_timestamp", "_key"]))
        conversion = converter.convert(DECODER.decode(raw), file, TopicSchema(TP.topic, NEVER))
        assert conversion.batch is not None
        assert conversion.batch.to_pylist() == [
            {
                "_partition": 3,
                "_offset": 10,
                "_timestamp": datetime(2024, 1, 1, 0, 0, 0, 1000, tzinfo=UTC),
                "_key": b"k",
                EXTRA_COLUMN: None,
            },
            {"_partition": 3, "_offset": 11, "_timestamp": None, "_key": None, EXTRA_COLUMN: '{"a":1}'},
        ]

    @pytest.mark.parametrize("timestamp_ms", [INT64_MAX, INT64_MAX // 1000 + 1, INT64_MIN // 1000 - 1])
    def test_a_timestamp_the_column_cannot_hold_sends_its_record_to_the_quarantine(
        self, timestamp_ms: int
    ) -> None:
        """A broker may keep any 64-bit millisecond timestamp (a producer passing nanoseconds, say);
        past about 292,000 years from 1970 a microsecond column cannot hold it. That record goes to
        the quarantine with its timestamp in the detail, and its neighbours are archived."""
        converter = RowConverter(["_offset", "_timestamp"])
        raw = RawBatch(TP, [10, 11, 12], [BASE_MS, timestamp_ms, None], [None] * 3, [b"{}"] * 3)
        file = FileSchema(metadata_fields(["_offset", "_timestamp"]))
        conversion = converter.convert(DECODER.decode(raw), file, TopicSchema(TP.topic, NEVER))
        assert conversion.batch is not None
        assert conversion.batch.select(["_offset", "_timestamp"]).to_pylist() == [
            {"_offset": 10, "_timestamp": datetime(2024, 1, 1, tzinfo=UTC)},
            {"_offset": 12, "_timestamp": None},
        ]
        [rejected] = conversion.rejected
        assert (rejected.offset, rejected.timestamp_ms, rejected.reason) == (
            11,
            timestamp_ms,
            Reason.TIMESTAMP_OUT_OF_RANGE,
        )
        assert str(timestamp_ms) in rejected.detail

    def test_without_a_timestamp_column_any_timestamp_is_archived(self) -> None:
        """The range only matters to the `_timestamp` column: without it the record is a row."""
        converter = RowConverter(["_offset"])
        raw = RawBatch(TP, [10], [INT64_MAX], [None], [b"{}"])
        file = FileSchema(metadata_fields(["_offset"]))
        conversion = converter.convert(DECODER.decode(raw), file, TopicSchema(TP.topic, NEVER))
        assert conversion.batch is not None
        assert conversion.batch.num_rows == 1
        assert conversion.rejected == []

    def test_headers_column_keeps_each_records_headers_in_order(self) -> None:
        """`_headers` is a list of key/value structs per row: repeated keys and null values kept, null
        for a record without headers. A row the converter rejects takes its headers to its reject."""
        headers: list[RawHeaders] = [
            [("trace", b"t-1"), ("trace", b"t-2"), ("empty", None)],
            None,
            [("trace", b"t-3")],
        ]
        raw = RawBatch(
            TP, [0, 1, 2], [BASE_MS] * 3, [None] * 3, [b"{}", b"{}", b'{"a": 18446744073709551616}'], headers
        )
        file = FileSchema(metadata_fields(["_offset", "_headers"]))
        conversion = RowConverter(["_offset", "_headers"]).convert(
            DECODER.decode(raw), file, TopicSchema(TP.topic, NEVER)
        )
        assert conversion.batch is not None
        assert conversion.batch.schema.field("_headers").type == pa.list_(
            pa.struct([pa.field("key", pa.string(), nullable=False), pa.field("value", pa.binary())])
        )
        assert conversion.batch.select(["_offset", "_headers"]).to_pylist() == [
            {
                "_offset": 0,
                "_headers": [
                    {"key": "trace", "value": b"t-1"},
                    {"key": "trace", "value": b"t-2"},
                    {"key": "empty", "value": None},
                ],
            },
            {"_offset": 1, "_headers": None},
        ]
        assert [(entry.offset, entry.headers) for entry in conversion.rejected] == [(2, [("trace", b"t-3")])]

    def test_headers_column_is_null_when_the_source_read_none(self) -> None:
        archive = _Archive(metadata=("_offset", "_headers"))
        assert archive.add([{"a": 1}]).batch is not None
        assert [record["_headers"] for record in archive.records()] == [None]

    def test_metadata_follows_the_rows_kept(self) -> None:
        """Records the decoder rejected leave no metadata row behind; the others keep theirs."""
        archive = _Archive(metadata=("_offset", "_key"))
        archive.add([b'{"a": 1}', b"not json", b'{"a": 3}'])
        records = archive.records()
        assert [(record["_offset"], record["_key"], record["a"]) for record in records] == [
            (0, b"k0", 1),
            (2, b"k2", 3),
        ]

    def test_metadata_fields_types(self) -> None:
        """metadata_fields gives the Arrow field of each listed metadata column."""
        assert metadata_fields(["_timestamp", "_partition"]) == [
            pa.field("_timestamp", pa.timestamp("us", tz="UTC")),
            pa.field("_partition", pa.int32()),
        ]

    def test_empty_poll_converts_to_nothing(self) -> None:
        """A poll whose records were all rejected by the decoder yields no batch and no new rejects."""
        raw = RawBatch(TP, [0, 1], [None, None], [None, None], [None, b"[]"])
        decoded = DECODER.decode(raw)
        conversion = RowConverter(["_offset"]).convert(
            decoded, FileSchema(metadata_fields(["_offset"])), TopicSchema(TP.topic, EAGER)
        )
        assert conversion == Conversion(None, [])


class TestConform:
    def test_batch_in_final_schema_is_returned_as_is(self) -> None:
        """A batch already in the file's schema is not rebuilt."""
        archive = _Archive()
        archive.add([{"a": 1}])
        batch = archive.batches[0]
        assert conform(batch, archive.file.arrow_schema()) is batch

    def test_later_column_is_filled_from_extra(self) -> None:
        """A column admitted after a batch was built takes that batch's values out of _extra."""
        archive = _Archive(SchemaPolicy(min_key_count=3, min_key_frequency=0.0))
        archive.add([{"a": 1, "b": "keep"}, {"a": 2}])
        archive.add([{"a": 3}])
        assert _column(archive, "a") == [1, 2, 3]
        assert _extras(archive) == [{"b": "keep"}, None, None]

    def test_values_that_do_not_fit_stay_in_extra(self) -> None:
        """Values of the later column's key that do not fit its kind remain in _extra."""
        archive = _Archive(SchemaPolicy(min_key_count=5, min_key_frequency=0.0))
        archive.add([{"a": "x"}, {"a": True}, {"a": 1.5}, {"a": 7}])
        archive.add([{"a": 8}])
        assert _kinds(archive) == {"a": Kind.INT64}
        assert _column(archive, "a") == [None, None, None, 7, 8]
        assert _extras(archive) == [{"a": "x"}, {"a": True}, {"a": 1.5}, None, None]

    def test_ints_pulled_into_a_float_column_respect_2_53(self) -> None:
        """Ints within 2**53 become floats of a later float64 column; larger ones stay in _extra."""
        archive = _Archive(SchemaPolicy(min_key_count=3, min_key_frequency=0.0))
        archive.add([{"a": 4}, {"a": EXACT_FLOAT_INT + 1}])
        archive.add([{"a": 0.5}])
        assert _kinds(archive) == {"a": Kind.FLOAT64}
        assert _column(archive, "a") == [4.0, None, 0.5]
        assert _extras(archive) == [None, {"a": EXACT_FLOAT_INT + 1}, None]

    def test_values_pulled_into_a_json_column_become_json_text(self) -> None:
        """A later json column takes any earlier value as JSON text."""
        archive = _Archive(SchemaPolicy(min_key_count=3, min_key_frequency=0.0))
        archive.add([{"a": {"k": [1]}}, {"a": "s"}])
        archive.add([{"a": [True]}])
        assert _kinds(archive) == {"a": Kind.JSON}
        assert _column(archive, "a") == ['{"k":[1]}', '"s"', "[true]"]
        assert _extras(archive) == [None, None, None]

    def test_batch_without_extra_values_gets_null_columns(self) -> None:
        """A batch whose _extra is empty gains the later columns as nulls of their type."""
        archive = _Archive(SchemaPolicy(min_key_count=2, min_key_frequency=0.0))
        archive.add([{"b": None}])
        archive.add([{"a": "x"}, {"a": "y"}])
        conformed = conform(archive.batches[0], archive.file.arrow_schema())
        assert conformed.schema.equals(archive.file.arrow_schema())
        assert conformed.column("a").to_pylist() == [None]

    def test_conformed_batches_have_the_final_schema(self) -> None:
        """Every batch of an open file, conformed, has exactly the file's final schema."""
        archive = _Archive(SchemaPolicy(min_key_count=2, min_key_frequency=0.0))
        archive.add([{"a": 1, "b": {"x": 1}}])
        archive.add([{"a": 1.5, "b": [2], "c": "s"}])
        archive.add([{"c": "t", "d": False}, {"d": True}])
        schema = archive.file.arrow_schema()
        assert all(conform(batch, schema).schema.equals(schema) for batch in archive.batches)
        _assert_round_trip(
            archive,
            {
                0: {"a": 1, "b": {"x": 1}},
                1: {"a": 1.5, "b": [2], "c": "s"},
                2: {"c": "t", "d": False},
                3: {"d": True},
            },
        )


ROUND_TRIP_CASES: list[list[dict[str, Any]]] = [
    [{"a": 1, "b": "x"}, {"a": 1.5, "b": None}, {"c": [1, {"d": None}]}],
    [{"a": True}, {"a": 1}, {"a": 1.0}, {"a": "1"}, {"a": [1]}, {"a": {"1": 1}}, {"a": None}, {}],
    [{"": 1, "_offset": 2, "_extra": {"x": 3}, "_EXTRA": 4, "x" * 300: 5, "a.b/c": 6, "\u00e9\u65e5": 7}],
    [{"K": 1, "k": "two", "\u212a": 3.5}],  # KELVIN SIGN case-folds to "k"
    [{"n": INT64_MIN}, {"n": INT64_MAX}, {"n": UINT64_MAX}, {"n": EXACT_FLOAT_INT + 1}, {"n": -0.0}],
    [{"f": 1e-320}, {"f": 5e-324}, {"f": 1.7976931348623157e308}, {"f": 2}],
    [{"s": 'line\nbreak\u0000nul"quote\\'}, {"s": "\U0001f600"}],
]


class TestRoundTrip:
    @pytest.mark.parametrize("rows", ROUND_TRIP_CASES)
    @pytest.mark.parametrize(
        "policy", [EAGER, NEVER, SchemaPolicy(max_columns=1, min_key_count=1, min_key_frequency=0.0)]
    )
    def test_hand_written_rows_round_trip(self, rows: list[dict[str, Any]], policy: SchemaPolicy) -> None:
        """Typed columns plus _extra give back every non-null value of every row."""
        archive = _Archive(policy)
        archive.add(rows)
        assert archive.rejected == []
        _assert_round_trip(archive, dict(enumerate(rows)))

    @pytest.mark.parametrize("rows", ROUND_TRIP_CASES)
    def test_hand_written_rows_round_trip_one_poll_each(self, rows: list[dict[str, Any]]) -> None:
        """Rows converted one poll at a time, with columns admitted late, round-trip after conform."""
        archive = _Archive(SchemaPolicy(min_key_count=2, min_key_frequency=0.0))
        for row in rows:
            archive.add([row])
        assert archive.rejected == []
        _assert_round_trip(archive, dict(enumerate(rows)))

    @PROPERTY
    @given(rows=ROWS, policy=POLICIES)
    def test_random_objects_round_trip(self, rows: list[dict[str, Any]], policy: SchemaPolicy) -> None:
        """Any poll of JSON objects with 64-bit integers is archived whole and reads back unchanged."""
        archive = _Archive(policy)
        archive.add(rows)
        assert archive.rejected == []
        _assert_round_trip(archive, dict(enumerate(rows)))

    @PROPERTY
    @given(rows=ROWS_WITH_HUGE_INTS, policy=POLICIES)
    @example(rows=[{"a": [UINT64_MAX + 1]}, {"a": [UINT64_MAX]}], policy=EAGER)
    def test_rows_with_huge_integers_are_rejected_the_rest_round_trip(
        self, rows: list[dict[str, Any]], policy: SchemaPolicy
    ) -> None:
        """A row is rejected exactly when it holds an integer beyond 64 bits; the others read back."""
        archive = _Archive(policy)
        archive.add(rows)
        huge = {offset for offset, row in enumerate(rows) if _holds_huge_integer(row)}
        assert {entry.offset for entry in archive.rejected} == huge
        assert {entry.reason for entry in archive.rejected} <= {Reason.INTEGER_OUT_OF_RANGE}
        _assert_round_trip(archive, {offset: row for offset, row in enumerate(rows) if offset not in huge})

    @PROPERTY
    @given(
        polls=POLLS,
        policy=POLICIES,
        freeze_after=st.integers(min_value=0, max_value=4),
    )
    @example(polls=[[{"a": EXACT_FLOAT_INT + 1}], [{"a": 0.5}]], policy=EAGER, freeze_after=4)
    def test_random_polls_into_one_file_round_trip(
        self, polls: list[list[dict[str, Any]]], policy: SchemaPolicy, freeze_after: int
    ) -> None:
        """Polls into one file, with columns admitted, widened and frozen on the way, read back unchanged."""
        archive = _Archive(policy)
        for index, poll in enumerate(polls):
            if index == freeze_after:
                archive.freeze()
            archive.add(poll)
        rows = [row for poll in polls for row in poll]
        assert archive.rejected == []
        _assert_round_trip(archive, dict(enumerate(rows)))


class TestFixedSchema:
    @staticmethod
    def _archive(unknown_keys: Literal["extra", "quarantine"] = "extra") -> _Archive:
        fixed = FixedColumns({"id": Kind.INT64, "name": Kind.STRING, "meta": Kind.JSON}, unknown_keys)
        return _Archive(topic=TopicSchema(TP.topic, EAGER, fixed))

    def test_every_fixed_column_is_present_in_order(self) -> None:
        """Batches carry all fixed columns in the schema's order, null where a row lacks the key."""
        archive = self._archive()
        archive.add([{"name": "a"}])
        assert archive.batches[0].schema.names == ["_offset", "id", "name", "meta", "_extra"]
        assert archive.records()[0]["id"] is None

    def test_a_value_that_does_not_fit_quarantines_its_record(self) -> None:
        """A string where the schema says int64 rejects the record with schema_mismatch; others stay."""
        archive = self._archive()
        archive.add([{"id": 1}, {"id": "two"}, {"id": 3, "meta": {"x": [1]}}])
        assert [(entry.offset, entry.reason) for entry in archive.rejected] == [(1, Reason.SCHEMA_MISMATCH)]
        assert archive.rejected[0].detail == "'id' holds a JSON string, the schema says int64"
        assert [record["id"] for record in archive.records()] == [1, 3]

    def test_unknown_keys_go_to_extra_by_default(self) -> None:
        """Keys the schema does not name are kept in `_extra`, never promoted to columns."""
        archive = self._archive()
        for _ in range(3):
            archive.add([{"id": 1, "colour": "red"}] * 10)
        assert "colour" not in archive.file.columns
        assert archive.objects()[0] == {"id": 1, "colour": "red"}

    def test_unknown_keys_can_quarantine_the_record(self) -> None:
        """With unknown_keys = "quarantine", a record with a key outside the schema is rejected."""
        archive = self._archive("quarantine")
        archive.add([{"id": 1}, {"id": 2, "colour": "red", "size": None}])
        assert [(entry.offset, entry.reason) for entry in archive.rejected] == [(1, Reason.UNKNOWN_KEY)]
        assert archive.rejected[0].detail == "keys not in the schema: 'colour'"


class TestExtraDepth:
    def test_a_value_as_deep_as_a_json_column_allows_is_kept_in_extra(self) -> None:
        """A value orjson can write alone stays in `_extra` under its key, though `_extra` adds a level."""
        deep: Any = 7
        for level in range(254):
            deep = {"n": deep} if level % 2 else [deep]
        archive = _Archive(NEVER)
        conversion = archive.add([{"id": 1, "deep": deep}])
        assert conversion.rejected == []
        assert archive.objects()[0] == {"id": 1, "deep": deep}


class TestReservedNames:
    @pytest.mark.parametrize("key", ["date", "Date", "DATE"])
    def test_the_partition_folder_key_never_becomes_a_column(self, key: str) -> None:
        """`date` names the hive folders; a key named like it stays in `_extra` for readers to find."""
        archive = _Archive()
        archive.add([{key: "2020-01-01", "id": i} for i in range(10)])
        assert key not in archive.file.columns
        assert archive.objects()[0] == {key: "2020-01-01", "id": 0}


COMMON_PATH = """
import sys
from consumer.convert import RowConverter, metadata_fields
from consumer.quarantine import quarantine_batch
from consumer.records import Decoder, RawBatch, TopicPartition
from consumer.schema import SchemaPolicy, TopicSchema

tp = TopicPartition("events", 0)
values = [
    b'{"i": 1, "f": 0.5, "s": "x", "b": true, "j": {"n": [1e300]}, "big": 1e300}',
    b'{"i": -7, "f": 2, "s": null, "b": false, "j": [1, 2]}',
    b'{"i": null, "f": -1e300}',
    b"not json",
]
raw = RawBatch(tp, [0, 1, 2, 3], [1_700_000_000_000, None, 1, 2], [b"k", None, None, None], values)
topic = TopicSchema("events", SchemaPolicy(min_key_frequency=0.0, min_key_count=1))
names = ["_partition", "_offset", "_timestamp", "_key", "_headers"]
file = topic.new_file_schema(metadata_fields(names))
decoded = Decoder(1 << 20, False).decode(raw)
conversion = RowConverter(names).convert(decoded, file, topic)
assert conversion.batch is not None and conversion.batch.num_rows == 3 and not conversion.rejected
quarantine_batch(tp, decoded.rejected)
print("pyarrow._compute" in sys.modules)
"""


def test_the_common_path_never_loads_arrow_compute() -> None:
    """Loading Arrow's compute module costs about 11 MiB of RSS: decoding and converting ordinary
    rows of every kind (huge floats, exponents in JSON text, nulls, metadata) and quarantining the
    decoder's rejects never load it. (A fresh interpreter: this one may have loaded it already.)"""
    result = subprocess.run(
        [sys.executable, "-c", COMMON_PATH], capture_output=True, text=True, check=False, timeout=120
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.strip() == "False"
