"""Per-topic schema state: the type rules, the bounded registry of typed columns, key frequencies.

Type rules (a JSON value -> the column kind that holds it):
  true/false                 -> bool
  integer in int64 range     -> int64 (a float64 column also takes integers up to 2**53 exactly)
  other numbers              -> float64
  string                     -> string
  object or array            -> json (JSON text; a json column takes any value, as JSON)
  null                       -> NULL in any column; a null and an absent key read back the same
A value that does not fit its column's kind goes to the `_extra` JSON object under its key.

A column's kind is chosen when the key is first promoted and never changes once a file holding it
has been written (across restarts too: the registry is stored in every file and seeded from the
newest ones). Before that, an int64 column widens to float64 when floats arrive. Everything here
is bounded: at most `max_columns` typed columns per topic, and a key-frequency counter of fixed
capacity whose counts decay, so producers that invent keys (one per sensor id) cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import pyarrow as pa

from consumer.config import RESERVED_COLUMNS
from consumer.key_counter import KeyCounter

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
EXACT_FLOAT_INT = 2**53
MAX_KEY_LENGTH = 255
EXTRA_COLUMN = "_extra"
_RESERVED_FOLDED = frozenset(name.casefold() for name in RESERVED_COLUMNS)


class Kind(StrEnum):
    """The kinds of typed columns."""

    BOOL = "bool"
    INT64 = "int64"
    FLOAT64 = "float64"
    STRING = "string"
    JSON = "json"

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self]

    @classmethod
    def of_arrow(cls, arrow_type: pa.DataType) -> Kind | None:
        """The kind stored as this Arrow type, or None for types the archiver does not write."""
        for kind, candidate in _ARROW_TYPES.items():
            if arrow_type == candidate:
                return kind
        return None


_ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.BOOL: pa.bool_(),
    Kind.INT64: pa.int64(),
    Kind.FLOAT64: pa.float64(),
    Kind.STRING: pa.string(),
    Kind.JSON: pa.json_(pa.string()),
}
_NATURAL_KINDS: dict[type, Kind] = {
    bool: Kind.BOOL,
    int: Kind.INT64,
    float: Kind.FLOAT64,
    str: Kind.STRING,
    dict: Kind.JSON,
    list: Kind.JSON,
}


_JSON_TYPE_NAMES: dict[type, str] = {
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    dict: "object",
    list: "array",
}


def json_type_name(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages."""
    return _JSON_TYPE_NAMES.get(type(value), "null")


def accepts(kind: Kind, value: Any) -> bool:
    """Whether a non-null value fits a column of this kind without any loss."""
    kind_of_value = type(value)
    if kind is Kind.JSON:
        return True
    if kind is Kind.INT64:
        return kind_of_value is int and INT64_MIN <= value <= INT64_MAX
    if kind is Kind.FLOAT64:
        return kind_of_value is float or (
            kind_of_value is int and -EXACT_FLOAT_INT <= value <= EXACT_FLOAT_INT
        )
    return _NATURAL_KINDS.get(kind_of_value) is kind


def choose_kind(values: Sequence[Any]) -> Kind | None:
    """The kind for a new column: the first non-null value's, widened to float64 if floats mix with
    ints (the set of the values' types is taken at C speed)."""
    types = set(map(type, values))
    types.discard(type(None))
    if not types:
        return None
    first = _NATURAL_KINDS[type(next(value for value in values if value is not None))]
    if first in (Kind.INT64, Kind.FLOAT64) and int in types and float in types:
        return Kind.FLOAT64
    return first


@dataclass(frozen=True, slots=True)
class SchemaPolicy:
    """Limits for inferred schemas."""

    max_columns: int = 256
    min_key_frequency: float = 0.01
    min_key_count: int = 5


@dataclass(frozen=True, slots=True)
class FixedColumns:
    """A user-given schema: these columns, in this order, in every file of the topic.

    Values that do not fit their column send their record to the quarantine; keys without a
    column go to `_extra`, or send their record to the quarantine when unknown_keys is "quarantine".
    """

    columns: Mapping[str, Kind]
    unknown_keys: Literal["extra", "quarantine"] = "extra"


@dataclass(slots=True)
class Column:
    """A topic's typed column: its kind, whether a written file fixed it, its largest integer so far."""

    kind: Kind
    fixed: bool = False
    largest_integer: int = 0


class TopicSchema:
    """The typed columns of one topic and the frequencies of its keys."""

    def __init__(self, topic: str, policy: SchemaPolicy, fixed: FixedColumns | None = None) -> None:
        self.topic = topic
        self._policy = policy
        self.fixed = fixed
        self.columns: dict[str, Column] = {}
        self._folded: set[str] = set()
        self._keys = KeyCounter(capacity=max(1024, 8 * policy.max_columns))
        for key, kind in (fixed.columns if fixed else {}).items():
            self.register(key, kind)
            self.columns[key].fixed = True

    def new_file_schema(self, metadata_fields: Iterable[pa.Field]) -> FileSchema:
        """The schema of a new file: open to inferred columns, or the fixed columns, frozen."""
        schema = FileSchema(metadata_fields)
        if self.fixed is not None:
            for key, kind in self.fixed.columns.items():
                schema.admit(key, kind)
            schema.freeze()
        return schema

    def observe(self, rows: list[dict[str, Any]]) -> None:
        """Count keys over a sample of the rows."""
        self._keys.observe(rows)

    def observe_alike(self, keys: Iterable[str], rows: int) -> None:
        """Count keys as observe() would, for rows that all carry exactly these keys."""
        self._keys.observe_alike(keys, rows)

    def kind(self, key: str) -> Kind | None:
        column = self.columns.get(key)
        return column.kind if column else None

    def promotable(self, key: str) -> bool:
        """Whether a key without a column is frequent enough, well-named, and there is room for it."""
        if self.fixed is not None or key in self.columns or len(self.columns) >= self._policy.max_columns:
            return False
        count = self._keys.count(key)
        if count < self._policy.min_key_count or count < self._policy.min_key_frequency * self._keys.rows:
            return False
        return valid_column_name(key) and key.casefold() not in self._folded

    def register(self, key: str, kind: Kind) -> None:
        self.columns[key] = Column(kind)
        self._folded.add(key.casefold())

    def may_widen(self, key: str) -> bool:
        """Whether the column's kind is still open: no written file holds it yet."""
        column = self.columns.get(key)
        return column is not None and not column.fixed

    def note_integers(self, key: str, magnitude: int) -> None:
        """Remember the largest integer buffered in a column that may still widen."""
        if self.may_widen(key):
            column = self.columns[key]
            column.largest_integer = max(column.largest_integer, magnitude)

    def widen(self, key: str) -> bool:
        """Turn an int64 column that no written file holds yet into float64; True if it was widened.

        Only when every integer buffered for it (in any partition) is exact as a float.
        """
        column = self.columns[key]
        if column.fixed or column.kind is not Kind.INT64 or column.largest_integer > EXACT_FLOAT_INT:
            return False
        column.kind = Kind.FLOAT64
        return True

    def fix(self, key: str, kind: Kind) -> None:
        """A file holding this column is being written with this kind (claimed for the whole
        group, see column_registry.py): it may never change."""
        column = self.columns.get(key)
        if column is None:
            self.register(key, kind)
            column = self.columns[key]
        column.kind = kind
        column.fixed = True

    def seed(self, kinds: Mapping[str, Kind]) -> None:
        """Adopt the claimed kinds of the topic's columns; a fixed schema ignores them."""
        if self.fixed is not None:
            return
        for key, kind in kinds.items():
            if not valid_column_name(key):  # claimed before its name was reserved: now in `_extra`
                continue
            if key in self.columns or len(self.columns) < self._policy.max_columns:
                self.fix(key, kind)

    def unfixed(self, keys: Iterable[str]) -> list[str]:
        """The keys whose kind no written file has fixed yet."""
        return [key for key in keys if not self.columns[key].fixed]

    def registry(self) -> dict[str, str]:
        """Every fixed column with its kind, for the files' metadata."""
        return {key: column.kind.value for key, column in self.columns.items() if column.fixed}

    @property
    def tracked_keys(self) -> int:
        return len(self._keys)


def valid_column_name(key: str) -> bool:
    """Keys that can be column names in every common reader; the others stay in `_extra`."""
    return 0 < len(key) <= MAX_KEY_LENGTH and key.casefold() not in _RESERVED_FOLDED and key.isprintable()


class FileSchema:
    """The data columns of one output file: open until its first row group is written, then frozen."""

    def __init__(self, metadata_fields: Iterable[pa.Field]) -> None:
        self._metadata_fields = list(metadata_fields)
        self.columns: dict[str, Kind] = {}
        self.frozen = False

    def admit(self, key: str, kind: Kind) -> None:
        self.columns[key] = kind

    def retype(self, key: str, kind: Kind) -> None:
        self.columns[key] = kind

    def freeze(self) -> None:
        self.frozen = True

    def arrow_schema(self) -> pa.Schema:
        """Metadata columns, then data columns in the order they were admitted, then `_extra`."""
        data = [pa.field(key, kind.arrow_type) for key, kind in self.columns.items()]
        return pa.schema([*self._metadata_fields, *data, pa.field(EXTRA_COLUMN, Kind.JSON.arrow_type)])
