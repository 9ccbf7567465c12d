"""Schema evolution end to end: churning keys, type flips, a column cap and a restart, read back by DuckDB.

One topic is archived in two daemon runs with small files. Every record carries a stable core of
eleven keys (more than `schema.max_columns` = 8), two of which flip type now and then, plus one
rare key from a universe of a million. Between the runs, the first values of two typed columns
change type, so that a registry inferred afresh would choose other types than the files hold.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from consumer.errors import ExitCode
from tests.support.archive import (
    archive_until_committed,
    archiver_config,
    data_columns,
    read_rows,
    rebuild,
    wait_until_committed,
    without_nulls,
)
from tests.support.daemon import DaemonProcess
from tests.support.kafka_tools import create_topic, end_offsets, produce

PARTITIONS = 2
RECORDS_PER_RUN = 8000
MAX_COLUMNS = 8
STABLE_KEYS = (
    "id",
    "ratio",
    "price",
    "count",
    "level",
    "user",
    "active",
    "tags",
    "address",
    "note",
    "region",
)
RARE_PREFIX = "rare_"
KEY_UNIVERSE = 1_000_000
UNTYPED_COLUMNS = frozenset({"_partition", "_offset", "_timestamp", "_key", "_extra"})

Offset = tuple[int, int]
Make = Callable[[int, random.Random], dict[str, Any]]


def _first_run_record(index: int, rng: random.Random) -> dict[str, Any]:
    """One rare key first (so it would compete for a column), then the stable core with its type flips.

    In the first run ratio is always an int and price always a float.
    """
    rare_value = rng.choice([rng.random(), rng.randint(-(10**12), 10**12), f"v{rng.randint(0, 999)}"])
    record: dict[str, Any] = {
        f"{RARE_PREFIX}{rng.randrange(KEY_UNIVERSE)}": rare_value,
        "id": index,
        "ratio": index % 100,
        "price": round(rng.uniform(1, 500), 2),
        "count": str(index) if index % 7 == 0 else index,  # an int that is sometimes a string
        "level": index + 0.5 if index % 9 == 0 else index,  # an int that is sometimes a float
        "user": f"user-{rng.randint(1, 50)}",
        "active": rng.random() < 0.5,
        "tags": rng.sample(["a", "b", "c", "d"], rng.randint(0, 3)),
        "address": {"city": rng.choice(["Berlin", "Lyon", "Oslo"]), "zip": f"{rng.randint(0, 99999):05d}"},
        "note": None if index % 5 == 0 else f"note {index} é 字",
        "region": rng.choice(["eu", "us", "apac"]),
    }
    return record


def _second_run_record(index: int, rng: random.Random) -> dict[str, Any]:
    """As the first run, but ratio starts with floats and price with strings: fresh inference would differ."""
    record = _first_run_record(index, rng)
    if (index // PARTITIONS) % 2 == 0:  # each partition's first record of the run, and every other one
        record["ratio"] = index / 8 + 0.25
        record["price"] = f"{record['price']:.2f}"
    return record


def _produce_run(
    bootstrap: str, topic: str, indexes: Iterable[int], make: Make
) -> dict[Offset, dict[str, Any]]:
    """Produce records round-robin; return each (partition, offset)'s object as the archive gives it back."""
    rng = random.Random(11)
    produced: dict[Offset, dict[str, Any]] = {}
    batch: list[tuple[int, bytes | None, bytes | None]] = []
    for index in indexes:
        record = make(index, rng)
        produced[(index % PARTITIONS, index // PARTITIONS)] = without_nulls(record)
        batch.append((index % PARTITIONS, None, orjson.dumps(record)))
    produce(bootstrap, topic, batch)
    return produced


@dataclass(frozen=True)
class Evolution:
    """The archive after both runs, its rows as DuckDB reads them, what was produced, the first run's ends."""

    root: Path
    topic: str
    rows: list[dict[str, Any]]
    produced: dict[Offset, dict[str, Any]]
    first_run_ends: dict[int, int]

    def data_files(self) -> list[Path]:
        return sorted((self.root / self.topic).glob("**/*.parquet"))

    def from_second_run(self, path: Path) -> bool:
        table = pq.read_table(path, columns=["_partition", "_offset"])
        partition = table.column("_partition")[0].as_py()
        return bool(min(table.column("_offset").to_pylist()) >= self.first_run_ends[partition])


@pytest.fixture(scope="module")
def evolution(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Evolution:
    """Archive a first run, stop, produce records whose first values infer differently, archive again."""
    topic = f"schema-evolution-{uuid.uuid4().hex[:8]}"
    group = f"g-{topic}"
    create_topic(kafka_bootstrap, topic, PARTITIONS)
    folder = tmp_path_factory.mktemp("evolution")
    config = archiver_config(
        folder / "archiver.toml",
        kafka_bootstrap,
        group,
        [topic],
        schema={"max_columns": MAX_COLUMNS},
        rotation={"file_max_bytes": 65536, "row_group_max_bytes": 65536, "file_max_idle_s": 1.0},
        kafka={"poll_max_messages": 500},
    )
    produced = _produce_run(kafka_bootstrap, topic, range(RECORDS_PER_RUN), _first_run_record)
    archive_until_committed(config, kafka_bootstrap, group, topic, PARTITIONS)
    first_run_ends = end_offsets(kafka_bootstrap, topic, PARTITIONS)
    second = range(RECORDS_PER_RUN, 2 * RECORDS_PER_RUN)
    produced |= _produce_run(kafka_bootstrap, topic, second, _second_run_record)
    archive_until_committed(config, kafka_bootstrap, group, topic, PARTITIONS)
    root = folder / "archive"
    return Evolution(root, topic, read_rows(root, topic), produced, first_run_ends)


def _typed_columns(path: Path) -> dict[str, pa.DataType]:
    """A file's typed columns (metadata columns and `_extra` left out) and their Arrow types."""
    return {field.name: field.type for field in pq.read_schema(path) if field.name not in UNTYPED_COLUMNS}


def _rare(keys: Iterable[str]) -> set[str]:
    return {key for key in keys if key.startswith(RARE_PREFIX)}


def test_every_record_rebuilds_from_typed_columns_and_extra(evolution: Evolution) -> None:
    """Each archived row's typed columns plus `_extra` give back the produced object, across every file."""
    columns = data_columns(evolution.rows)
    archived = {(row["_partition"], row["_offset"]): rebuild(row, columns) for row in evolution.rows}
    assert len(archived) == len(evolution.rows) == 2 * RECORDS_PER_RUN
    assert archived == evolution.produced


def test_rare_keys_stay_in_extra_and_never_become_columns(evolution: Evolution) -> None:
    """Keys seen once in a million never get a column, though each comes first in its record."""
    typed = {name for path in evolution.data_files() for name in _typed_columns(path)}
    assert not _rare(typed)
    in_extra = {key for row in evolution.rows for key in _rare(row["_extra"] or {})}
    assert in_extra == {key for record in evolution.produced.values() for key in _rare(record)}


def test_no_file_has_more_typed_columns_than_max_columns(evolution: Evolution) -> None:
    """With more stable keys than schema.max_columns, every file stops at the cap; the rest go to `_extra`."""
    files = evolution.data_files()
    assert len(files) >= 4 * PARTITIONS  # small files: the cap is checked on many
    per_file = {path.name: len(_typed_columns(path)) for path in files}
    assert max(per_file.values()) <= MAX_COLUMNS, per_file
    typed = {name for path in files for name in _typed_columns(path)}
    assert len(typed) == MAX_COLUMNS
    assert typed < set(STABLE_KEYS)


def test_column_types_stay_the_same_across_a_restart(evolution: Evolution) -> None:
    """After a restart, every file keeps each column's Parquet type though new first values infer others."""
    files = evolution.data_files()
    second_run = [path for path in files if evolution.from_second_run(path)]
    assert second_run, "the second run wrote no file"
    assert all({"ratio", "price"} <= _typed_columns(path).keys() for path in second_run)
    assert {_typed_columns(path)["ratio"] for path in files} == {pa.int64()}
    assert {_typed_columns(path)["price"] for path in files} == {pa.float64()}
    relation = duckdb.read_parquet(f"{evolution.root / evolution.topic}/**/*.parquet", union_by_name=True)
    union = dict(zip(relation.columns, map(str, relation.types), strict=True))
    assert (union["ratio"], union["price"]) == ("BIGINT", "DOUBLE")


def test_values_that_no_longer_fit_go_to_extra_after_a_restart(evolution: Evolution) -> None:
    """The second run's floats for the int64 column and strings for the float64 one are kept in `_extra`."""
    second_run = [
        row for row in evolution.rows if row["_offset"] >= evolution.first_run_ends[row["_partition"]]
    ]
    flipped = [row for row in second_run if row["_extra"] and "ratio" in row["_extra"]]
    assert len(flipped) == len(second_run) // 2
    for row in flipped:
        produced = evolution.produced[(row["_partition"], row["_offset"])]
        assert (row["ratio"], row["price"]) == (None, None)
        assert (row["_extra"]["ratio"], row["_extra"]["price"]) == (produced["ratio"], produced["price"])


def test_members_of_one_group_give_a_column_one_type(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, tmp_path: Path
) -> None:
    """Two daemons meet `x` as an int on one partition, as a string on the other: one type in all files."""
    topic = topic_factory(2)
    rotation = {"file_max_idle_s": 1.0}
    first = DaemonProcess(
        archiver_config(tmp_path / "a.toml", kafka_bootstrap, group_id, [topic], rotation=rotation)
    )
    second: DaemonProcess | None = None
    try:
        first.wait_for_event("partitions_assigned")
        second = DaemonProcess(
            archiver_config(tmp_path / "b.toml", kafka_bootstrap, group_id, [topic], rotation=rotation)
        )
        second.wait_for(
            lambda event: event.get("event") == "partitions_assigned" and bool(event["partitions"])
        )
        produce(kafka_bootstrap, topic, [(0, None, orjson.dumps({"n": i, "x": i})) for i in range(200)])
        produce(kafka_bootstrap, topic, [(1, None, orjson.dumps({"n": i, "x": f"s{i}"})) for i in range(200)])
        wait_until_committed(kafka_bootstrap, group_id, topic, 2)
    finally:
        assert first.stop() == ExitCode.OK, first.describe()
        if second is not None:
            assert second.stop() == ExitCode.OK, second.describe()
    files = sorted((tmp_path / "archive" / topic).glob("date=*/*.parquet"))
    assert {path.name.split("+")[1] for path in files} == {"0", "1"}
    schemas = [pq.read_schema(path) for path in files]
    assert len({str(schema.field("x").type) for schema in schemas if "x" in schema.names}) == 1
    rows = read_rows(tmp_path / "archive", topic)
    rebuilt = {(row["_partition"], row["n"]): rebuild(row, data_columns(rows)) for row in rows}
    expected = {(0, i): {"n": i, "x": i} for i in range(200)} | {
        (1, i): {"n": i, "x": f"s{i}"} for i in range(200)
    }
    assert rebuilt == expected
