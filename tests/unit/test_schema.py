"""Schema state: type rules, column promotion, widening, fixed schemas, file schemas."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from consumer.key_counter import SAMPLE_ROWS
from consumer.schema import (
    EXACT_FLOAT_INT,
    INT64_MAX,
    INT64_MIN,
    MAX_KEY_LENGTH,
    FileSchema,
    FixedColumns,
    Kind,
    SchemaPolicy,
    TopicSchema,
    accepts,
    choose_kind,
    valid_column_name,
)

EAGER = SchemaPolicy(min_key_count=1, min_key_frequency=0.0)


def _topic(policy: SchemaPolicy = EAGER, rows: list[dict[str, Any]] | None = None) -> TopicSchema:
    topic = TopicSchema("t", policy)
    if rows:
        topic.observe(rows)
    return topic


class TestKind:
    @pytest.mark.parametrize(
        ("kind", "arrow_type"),
        [
            (Kind.BOOL, pa.bool_()),
            (Kind.INT64, pa.int64()),
            (Kind.FLOAT64, pa.float64()),
            (Kind.STRING, pa.string()),
            (Kind.JSON, pa.json_(pa.string())),
        ],
    )
    def test_arrow_type_round_trips(self, kind: Kind, arrow_type: pa.DataType) -> None:
        """Each kind is stored as its Arrow type and is recognised from it."""
        assert kind.arrow_type == arrow_type
        assert Kind.of_arrow(arrow_type) is kind

    @pytest.mark.parametrize("arrow_type", [pa.int32(), pa.large_string(), pa.binary(), pa.float32()])
    def test_foreign_arrow_types_have_no_kind(self, arrow_type: pa.DataType) -> None:
        """Arrow types the archiver never writes map to no kind."""
        assert Kind.of_arrow(arrow_type) is None


class TestAccepts:
    @pytest.mark.parametrize(
        ("kind", "value"),
        [
            (Kind.BOOL, True),
            (Kind.BOOL, False),
            (Kind.INT64, 0),
            (Kind.INT64, INT64_MAX),
            (Kind.INT64, INT64_MIN),
            (Kind.FLOAT64, 1.5),
            (Kind.FLOAT64, 1e300),
            (Kind.FLOAT64, 3),
            (Kind.FLOAT64, EXACT_FLOAT_INT),
            (Kind.FLOAT64, -EXACT_FLOAT_INT),
            (Kind.STRING, ""),
            (Kind.STRING, "x"),
            (Kind.JSON, {"a": 1}),
            (Kind.JSON, [1, "a"]),
            (Kind.JSON, 1),
            (Kind.JSON, "text"),
            (Kind.JSON, True),
            (Kind.JSON, 2**64),
        ],
    )
    def test_fitting_values_are_accepted(self, kind: Kind, value: Any) -> None:
        """A value of the column's natural type (or any value for json) fits."""
        assert accepts(kind, value)

    @pytest.mark.parametrize(
        ("kind", "value"),
        [
            (Kind.INT64, True),
            (Kind.INT64, False),
            (Kind.FLOAT64, True),
            (Kind.FLOAT64, False),
            (Kind.INT64, 1.0),
            (Kind.INT64, 1.5),
            (Kind.INT64, INT64_MAX + 1),
            (Kind.INT64, INT64_MIN - 1),
            (Kind.INT64, 2**64 - 1),
            (Kind.FLOAT64, EXACT_FLOAT_INT + 1),
            (Kind.FLOAT64, -EXACT_FLOAT_INT - 1),
            (Kind.FLOAT64, EXACT_FLOAT_INT + 2),
            (Kind.FLOAT64, "1.5"),
            (Kind.BOOL, 1),
            (Kind.BOOL, 0),
            (Kind.BOOL, "true"),
            (Kind.STRING, 1),
            (Kind.STRING, True),
            (Kind.STRING, {"a": "b"}),
            (Kind.STRING, ["a"]),
            (Kind.INT64, {"a": 1}),
        ],
    )
    def test_misfits_are_refused(self, kind: Kind, value: Any) -> None:
        """Booleans are not numbers, floats are not ints, and ints beyond exact range do not fit."""
        assert not accepts(kind, value)


class TestChooseKind:
    @pytest.mark.parametrize(
        ("values", "expected"),
        [
            ([True, False], Kind.BOOL),
            ([1, 2], Kind.INT64),
            ([1.5], Kind.FLOAT64),
            (["a"], Kind.STRING),
            ([{"a": 1}], Kind.JSON),
            ([[1]], Kind.JSON),
            ([None, 3], Kind.INT64),
            ([1, 2.5], Kind.FLOAT64),
            ([2.5, 1], Kind.FLOAT64),
            ([True, 1], Kind.BOOL),
            ([1, True], Kind.INT64),
            (["a", 1, 1.5], Kind.STRING),
            ([{"a": 1}, 1, 1.5], Kind.JSON),
        ],
    )
    def test_first_non_null_value_decides(self, values: list[Any], expected: Kind) -> None:
        """The first non-null value's kind wins, widened to float64 when ints meet floats."""
        assert choose_kind(values) is expected

    def test_only_nulls_choose_nothing(self) -> None:
        """Without a non-null value there is no kind yet."""
        assert choose_kind([None, None]) is None
        assert choose_kind([]) is None

    def test_booleans_are_not_numbers_for_widening(self) -> None:
        """Booleans neither widen an int column nor become numeric when numbers follow them."""
        assert choose_kind([1, True, 2]) is Kind.INT64
        assert choose_kind([True, 1, 1.5]) is Kind.BOOL


class TestValidColumnName:
    @pytest.mark.parametrize(
        "key", ["a", "a.b", "a/b", "with space", "ünïcødé", "日本", "x" * MAX_KEY_LENGTH, "_private"]
    )
    def test_ordinary_names_are_valid(self, key: str) -> None:
        """Printable names of 1 to 255 characters, dots and slashes included, can be columns."""
        assert valid_column_name(key)

    @pytest.mark.parametrize(
        "key",
        [
            "",
            "x" * (MAX_KEY_LENGTH + 1),
            "_partition",
            "_offset",
            "_timestamp",
            "_key",
            "_headers",
            "_extra",
            "line\nbreak",
            "nul\x00",
            "tab\t",
            "zero\u200bwidth",
        ],
    )
    def test_reserved_empty_long_or_unprintable_names_are_invalid(self, key: str) -> None:
        """Reserved names, the empty key, keys over 255 characters and unprintable keys stay in _extra."""
        assert not valid_column_name(key)


class TestTopicSchemaPromotion:
    def test_key_needs_min_key_count(self) -> None:
        """A key seen in fewer than min_key_count rows is not promotable."""
        policy = SchemaPolicy(min_key_count=3, min_key_frequency=0.0)
        topic = _topic(policy, [{"a": 1}, {"a": 1}])
        assert not topic.promotable("a")
        topic.observe([{"a": 1}])
        assert topic.promotable("a")

    def test_key_needs_min_key_frequency(self) -> None:
        """A key carried by fewer than min_key_frequency of the sampled rows is not promotable."""
        policy = SchemaPolicy(min_key_count=1, min_key_frequency=0.5)
        topic = _topic(policy, [{"a": 1}, {"b": 1}, {"b": 1}])
        assert not topic.promotable("a")
        assert topic.promotable("b")

    def test_max_columns_is_a_hard_cap(self) -> None:
        """With max_columns registered columns, no other key is promotable."""
        topic = _topic(SchemaPolicy(max_columns=2, min_key_count=1, min_key_frequency=0.0), [{"c": 1}])
        topic.register("a", Kind.INT64)
        topic.register("b", Kind.INT64)
        assert not topic.promotable("c")

    def test_registered_key_is_not_promotable_again(self) -> None:
        """A key that has a column is not promoted a second time."""
        topic = _topic(rows=[{"a": 1}])
        topic.register("a", Kind.INT64)
        assert not topic.promotable("a")

    @pytest.mark.parametrize("key", ["", "_offset", "_extra", "x" * 256, "a\nb"])
    def test_invalid_names_are_never_promotable(self, key: str) -> None:
        """Frequent keys with invalid names stay out of the columns."""
        topic = _topic(rows=[{key: 1}] * 10)
        assert not topic.promotable(key)

    def test_case_fold_collisions_are_not_promotable(self) -> None:
        """A key equal to an existing column after case folding never becomes a column."""
        topic = _topic(rows=[{"Name": 1, "NAME": 1, "strasse": 1, "STRASSE": 1}] * 5)
        topic.register("name", Kind.INT64)
        topic.register("straße", Kind.INT64)
        assert not topic.promotable("Name")
        assert not topic.promotable("NAME")
        assert not topic.promotable("STRASSE")

    @pytest.mark.parametrize("key", ["_EXTRA", "_Offset"])
    def test_case_fold_twins_of_reserved_names_are_not_promotable(self, key: str) -> None:
        """A key equal to `_extra` or a metadata column after case folding never becomes a column."""
        topic = _topic(rows=[{key: 1}] * 10)
        assert not topic.promotable(key)


class TestTopicSchemaKinds:
    def test_register_sets_kind(self) -> None:
        """A registered key reports its kind; others report none."""
        topic = _topic()
        topic.register("a", Kind.STRING)
        assert topic.kind("a") is Kind.STRING
        assert topic.kind("b") is None

    def test_unfixed_int_column_widens(self) -> None:
        """An int64 column no file has fixed turns into float64."""
        topic = _topic()
        topic.register("a", Kind.INT64)
        assert topic.widen("a")
        assert topic.kind("a") is Kind.FLOAT64

    def test_fixed_int_column_does_not_widen(self) -> None:
        """Once a written file holds the column, its kind never changes."""
        topic = _topic()
        topic.register("a", Kind.INT64)
        topic.fix("a", Kind.INT64)
        assert not topic.widen("a")
        assert topic.kind("a") is Kind.INT64

    @pytest.mark.parametrize("kind", [Kind.BOOL, Kind.FLOAT64, Kind.STRING, Kind.JSON])
    def test_only_int_columns_widen(self, kind: Kind) -> None:
        """Widening applies to int64 columns only."""
        topic = _topic()
        topic.register("a", kind)
        assert not topic.widen("a")
        assert topic.kind("a") is kind

    def test_seed_adopts_fixed_kinds(self) -> None:
        """Claimed kinds are adopted as fixed, and block case-fold twins."""
        topic = _topic(rows=[{"A": 1}])
        topic.seed({"a": Kind.INT64})
        assert topic.kind("a") is Kind.INT64
        assert not topic.widen("a")
        assert not topic.promotable("A")

    def test_only_columns_no_file_holds_may_widen(self) -> None:
        """Integers are tracked (for widening) only while a column's kind is open."""
        topic = _topic()
        topic.register("open", Kind.INT64)
        topic.register("written", Kind.INT64)
        topic.fix("written", Kind.INT64)
        assert [topic.may_widen(key) for key in ("open", "written", "unknown")] == [True, False, False]
        topic.note_integers("written", 2**60)
        topic.note_integers("open", 7)
        assert (topic.columns["open"].largest_integer, topic.columns["written"].largest_integer) == (7, 0)

    def test_claims_of_names_now_reserved_are_not_adopted(self) -> None:
        """A column claimed before its name became a metadata column's stays out: its values go to _extra."""
        topic = _topic()
        topic.seed({"_headers": Kind.JSON, "a": Kind.INT64})
        assert topic.registry() == {"a": "int64"}
        assert not topic.promotable("_headers")

    def test_claimed_kinds_win_and_the_cap_holds(self) -> None:
        """A claimed kind replaces a provisional local one; seeding never exceeds max_columns."""
        topic = _topic(SchemaPolicy(max_columns=2))
        topic.register("a", Kind.STRING)
        topic.seed({"a": Kind.INT64, "b": Kind.BOOL, "c": Kind.BOOL})
        assert topic.registry() == {"a": "int64", "b": "bool"}

    def test_registry_lists_every_fixed_column(self) -> None:
        """The registry maps each fixed column to its kind's name; provisional ones are left out."""
        topic = _topic()
        topic.register("a", Kind.INT64)
        topic.register("b", Kind.JSON)
        topic.fix("b", Kind.JSON)
        assert topic.registry() == {"b": "json"}

    def test_high_cardinality_keys_never_become_columns(self) -> None:
        """One distinct key per row (sensor ids) never earns a column and tracking stays bounded."""
        topic = _topic(SchemaPolicy())
        for batch in range(12):
            rows = [{f"sensor-{batch}-{i}": 1.0, "ts": i} for i in range(SAMPLE_ROWS)]
            topic.observe(rows)
            assert not any(topic.promotable(key) for row in rows[:50] for key in row if key != "ts")
        assert topic.promotable("ts")
        assert topic.tracked_keys <= 2 * max(1024, 8 * SchemaPolicy().max_columns)


class TestFileSchema:
    def test_arrow_schema_orders_metadata_data_extra(self) -> None:
        """Metadata fields come first, data columns in admission order, `_extra` last."""
        schema = FileSchema([pa.field("_offset", pa.int64())])
        schema.admit("b", Kind.STRING)
        schema.admit("a", Kind.INT64)
        arrow = schema.arrow_schema()
        assert arrow.names == ["_offset", "b", "a", "_extra"]
        assert arrow.field("a").type == pa.int64()
        assert arrow.field("_extra").type == pa.json_(pa.string())

    def test_empty_schema_has_only_extra(self) -> None:
        """Without metadata or data columns, a file still has `_extra`."""
        assert FileSchema([]).arrow_schema().names == ["_extra"]

    def test_retype_keeps_position(self) -> None:
        """Retyping a column changes its type, not its place."""
        schema = FileSchema([])
        schema.admit("a", Kind.INT64)
        schema.admit("b", Kind.BOOL)
        schema.retype("a", Kind.FLOAT64)
        assert schema.arrow_schema().names == ["a", "b", "_extra"]
        assert schema.arrow_schema().field("a").type == pa.float64()

    def test_freeze(self) -> None:
        """A file schema starts open and is frozen by freeze()."""
        schema = FileSchema([])
        assert not schema.frozen
        schema.freeze()
        assert schema.frozen


class TestFixedSchema:
    def test_file_schemas_hold_every_fixed_column_in_order_from_the_start(self) -> None:
        """A fixed topic's new files have the user's columns, in the user's order, already frozen."""
        fixed = FixedColumns({"b": Kind.STRING, "a": Kind.INT64})
        schema = TopicSchema("t", EAGER, fixed).new_file_schema([])
        assert schema.frozen
        assert schema.columns == {"b": Kind.STRING, "a": Kind.INT64}

    def test_no_key_is_promoted_and_seeding_changes_nothing(self) -> None:
        """Under a fixed schema, frequent keys stay out and kinds found in files are ignored."""
        topic = TopicSchema("t", EAGER, FixedColumns({"a": Kind.INT64}))
        topic.observe([{"z": 1}] * 50)
        topic.seed({"a": Kind.STRING, "y": Kind.BOOL})
        assert not topic.promotable("z")
        assert topic.registry() == {"a": "int64"}
