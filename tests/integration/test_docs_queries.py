"""Every DuckDB example of docs/operations.md runs on a real archive of sample data and returns rows."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path
from typing import get_args

import duckdb
import pytest

from consumer.config import MetadataColumn, load_settings
from consumer.errors import ExitCode
from consumer.sample import produce_sample
from tests.support.archive import archive_until_committed, archiver_config
from tests.support.kafka_tools import RecordWriter, create_topic

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
EXAMPLE = re.compile(r"<!-- duckdb-example -->\s*```sql\n(?P<sql>.*?)```", re.DOTALL)
EXAMPLES = [match["sql"] for match in EXAMPLE.finditer(GUIDE.read_text())]
PARTITIONS = 3
BAD_VALUES = [b"{not json", b"[1, 2, 3]", b'{"text": "\xff\xfe"}']


def _first_line(sql: str) -> str:
    return re.sub(r"\W+", "-", sql.strip().splitlines()[0])[:60]


@pytest.fixture(scope="module")
def archive(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An archive of 2,000 sample events, a few bad records and one with headers, written with every
    metadata column: (output root, topic)."""
    topic = f"docs-{uuid.uuid4().hex[:8]}"
    group = f"g-{topic}"
    create_topic(kafka_bootstrap, topic, PARTITIONS)
    folder = tmp_path_factory.mktemp("docs")
    config = archiver_config(
        folder / "archiver.toml",
        kafka_bootstrap,
        group,
        [topic],
        output={"metadata_columns": list(get_args(MetadataColumn))},
        rotation={"file_max_idle_s": 1.0},
    )
    assert produce_sample(load_settings(config), None, 0, 2000, 5, io.StringIO()) == ExitCode.OK
    writer = RecordWriter(kafka_bootstrap)
    writer.send(topic, [(index, b"bad", value) for index, value in enumerate(BAD_VALUES)])
    writer.send_with_headers(topic, [(0, b"traced", b'{"event_type": "view"}', [("trace-id", b"4bf92f35")])])
    archive_until_committed(config, kafka_bootstrap, group, topic, PARTITIONS)
    return folder / "archive", topic


def _localised(sql: str, root: Path, topic: str) -> str:
    """The example with the guide's placeholders (`data/` as root, `events` as topic) replaced."""
    return sql.replace("'data/_quarantine/events/", f"'{root}/_quarantine/{topic}/").replace(
        "'data/events/", f"'{root}/{topic}/"
    )


def test_the_guide_has_duckdb_examples() -> None:
    """The guide marks its DuckDB examples, and every one reads the placeholder archive `data/`."""
    assert len(EXAMPLES) >= 10
    for sql in EXAMPLES:
        assert "'data/events/" in sql or "'data/_quarantine/events/" in sql, sql


@pytest.mark.parametrize("sql", EXAMPLES, ids=[_first_line(sql) for sql in EXAMPLES])
def test_example_returns_rows(sql: str, archive: tuple[Path, str]) -> None:
    """The example runs without error on the archive and returns at least one row."""
    root, topic = archive
    localised = _localised(sql, root, topic)
    assert "'data/" not in localised
    rows = duckdb.connect().execute(localised).fetchall()
    assert rows, f"no rows from:\n{localised}"
