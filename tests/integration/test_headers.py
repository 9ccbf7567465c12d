"""Kafka headers against the real broker: the `_headers` column, and headers of rejected records."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import orjson

from consumer.config import load_settings
from consumer.errors import ExitCode
from consumer.verify import verify_archive
from tests.support.archive import archive_until_committed, archiver_config, read_quarantine, read_rows
from tests.support.kafka_tools import RecordWriter, create_topic, read_topic
from tests.support.raw_producer import produce_raw_headers

TRACED: list[tuple[str, str | bytes | None]] = [
    ("trace", b"t-1"),
    ("trace", b"t-2"),  # a repeated key keeps both, in order
    ("empty", None),
    ("caf\u00e9", b"\xff\x00 any bytes"),
]


def _as_column(headers: list[tuple[str, str | bytes | None]]) -> list[dict[str, object]]:
    return [{"key": key, "value": value} for key, value in headers]


def test_headers_are_archived_quarantined_and_dead_lettered(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, tmp_path: Path
) -> None:
    """With `_headers` among the metadata columns every record's headers are kept in order, in its
    row or its quarantine row and in its dead letter; a record whose header key is not UTF-8 is
    quarantined as invalid_headers, and the records after it are archived. verify --deep, which
    compares rows with the records read back, finds the archive sound."""
    topic = topic_factory(1)
    dead_letters = f"{topic}-dead"
    create_topic(kafka_bootstrap, dead_letters, 1)
    writer = RecordWriter(kafka_bootstrap)
    writer.send_with_headers(
        topic,
        [
            (0, b"k0", b'{"n": 0}', TRACED),
            (0, b"k1", b'{"n": 1}', None),
            (0, b"k2", b"{not json", [("trace", b"t-3")]),
        ],
    )
    produce_raw_headers(kafka_bootstrap, topic, 0, b'{"n": 3}', [(b"ok", b"1"), (b"\xff\xfe", b"v")])
    writer.send_with_headers(topic, [(0, None, b'{"n": 4}', [("trace", b"t-5")])])
    config = archiver_config(
        tmp_path / "archiver.toml",
        kafka_bootstrap,
        group_id,
        [topic],
        output={"metadata_columns": ["_partition", "_offset", "_headers"]},
        records={"dead_letter_topic": dead_letters},
        rotation={"file_max_idle_s": 1.0},
    )
    archive_until_committed(config, kafka_bootstrap, group_id, topic, 1)

    rows = read_rows(tmp_path / "archive", topic)
    assert [(row["_offset"], row["_extra"], row["_headers"]) for row in rows] == [
        (0, {"n": 0}, _as_column(TRACED)),
        (1, {"n": 1}, None),
        (4, {"n": 4}, [{"key": "trace", "value": b"t-5"}]),
    ]
    quarantined = read_quarantine(tmp_path / "archive", topic)
    assert [(row["_offset"], row["reason"], row["_headers"]) for row in quarantined] == [
        (2, "invalid_json", [{"key": "trace", "value": b"t-3"}]),
        (3, "invalid_headers", None),
    ]
    assert quarantined[1]["value"] == b'{"n": 3}'
    assert quarantined[1]["detail"].startswith("a header key is not UTF-8: 'utf-8' codec can't decode")

    letters = read_topic(kafka_bootstrap, dead_letters, 1)
    letters.sort(key=lambda letter: int(letter.headers["archiver.offset"]))
    assert [(letter.value, letter.header_pairs[0]) for letter in letters] == [
        (b"{not json", ("trace", b"t-3")),
        (b'{"n": 3}', ("archiver.topic", topic.encode())),
    ]
    assert [letter.headers["archiver.reason"] for letter in letters] == [b"invalid_json", b"invalid_headers"]

    out = io.StringIO()
    code = verify_archive(load_settings(config), deep=True, as_json=True, sample=100, out=out)
    report = orjson.loads(out.getvalue())
    assert (code, report["consistent"], report["findings"]) == (ExitCode.OK, True, [])
