"""Reading an archive the way users do (DuckDB), and the settings the end-to-end tests run with."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import orjson

from consumer.config import RESERVED_COLUMNS
from consumer.errors import ExitCode
from tests.support.daemon import DaemonProcess, write_config
from tests.support.kafka_tools import committed_offsets, end_offsets


def archiver_config(
    path: Path, bootstrap: str, group: str, topics: list[str], **sections: Mapping[str, Any]
) -> Path:
    """A config for a fast test run; sections override or extend the defaults given here."""
    settings: dict[str, dict[str, Any]] = {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "group_id": group,
            "topics": topics,
            "poll_timeout_s": 0.2,
            "properties": {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
        },
        "output": {"root": str(path.parent / "archive")},
        "stats": {"interval_s": 1.0},
        "shutdown": {"timeout_s": 30.0},
    }
    for name, values in sections.items():
        merged = {**settings.get(name, {}), **values}
        if name == "kafka" and "properties" in values:
            merged["properties"] = {**settings["kafka"]["properties"], **values["properties"]}
        settings[name] = merged
    return write_config(path, settings)


def read_rows(root: Path, topic: str) -> list[dict[str, Any]]:
    """Every archived row of a topic, read by DuckDB (hive partitioning, union_by_name), JSON parsed."""
    return _read(root / topic, ("_partition", "_offset"))


def read_quarantine(root: Path, topic: str) -> list[dict[str, Any]]:
    """Every quarantined record of a topic."""
    return _read(root / "_quarantine" / topic, ("_partition", "_offset"))


def data_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The user's columns of archived rows (metadata, `_extra` and the hive `date` left out)."""
    names = {name for row in rows for name in row}
    return sorted(names - RESERVED_COLUMNS)


def _read(base: Path, order: tuple[str, str]) -> list[dict[str, Any]]:
    if not list(base.glob("**/*.parquet")):
        return []
    relation = duckdb.read_parquet(f"{base}/**/*.parquet", hive_partitioning=True, union_by_name=True)
    relation = relation.order(", ".join(order))
    json_columns = {
        name for name, kind in zip(relation.columns, relation.types, strict=True) if str(kind) == "JSON"
    }
    return [
        {
            name: orjson.loads(value) if name in json_columns and value is not None else value
            for name, value in zip(relation.columns, row, strict=True)
        }
        for row in relation.fetchall()
    ]


def rebuild(row: Mapping[str, Any], columns: list[str]) -> dict[str, Any]:
    """The original JSON object of an archived row: typed columns plus `_extra`, nulls dropped."""
    rebuilt = {name: row[name] for name in columns if row.get(name) is not None}
    rebuilt.update(row.get("_extra") or {})
    return {key: value for key, value in rebuilt.items() if value is not None}


def without_nulls(record: Mapping[str, Any]) -> dict[str, Any]:
    """A produced object as the archive gives it back: top-level nulls and absent keys are the same."""
    return {key: value for key, value in record.items() if value is not None}


def wait_until_committed(
    bootstrap: str,
    group: str,
    topic: str,
    partitions: int,
    timeout_s: float = 90.0,
    alive: Callable[[], bool] = lambda: True,
) -> dict[int, int]:
    """Poll (with a deadline) until the group's committed offsets reach the topic's end offsets."""
    expected = end_offsets(bootstrap, topic, partitions)
    deadline = time.monotonic() + timeout_s
    while True:
        committed = committed_offsets(bootstrap, group, topic, partitions)
        if committed == expected:
            return committed
        if time.monotonic() > deadline or not alive():
            raise AssertionError(f"committed {committed}, expected {expected}")
        time.sleep(0.5)


def archive_until_committed(
    config: Path, bootstrap: str, group: str, topic: str, partitions: int
) -> DaemonProcess:
    """Run the daemon until the whole topic is committed, stop it with SIGTERM, expect exit code 0."""
    daemon = DaemonProcess(config)
    try:
        daemon.wait_for_event("partitions_assigned")
        wait_until_committed(bootstrap, group, topic, partitions, alive=lambda: daemon.process.poll() is None)
    except AssertionError as exc:
        code = daemon.stop()
        raise AssertionError(f"{exc}; the daemon exited with {code}: {daemon.describe()}") from exc
    code = daemon.stop()
    assert code == ExitCode.OK, f"exit code {code}: {daemon.describe()}"
    return daemon
