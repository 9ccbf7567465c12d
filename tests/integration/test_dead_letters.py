"""Dead letters against the real broker: copies fit the dead-letter topic's record size and timestamp limits.

(Every quarantined record's copy, with its key, value and headers, is checked over the
hostile-input run in test_hostile_input.py.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import orjson

from tests.support.archive import archive_until_committed, archiver_config, read_quarantine, read_rows
from tests.support.kafka_tools import create_topic, produce, produce_dated_to_a_lenient_topic, read_topic

TOPIC_LIMIT = 4096  # the dead-letter topic's max.message.bytes


def _archive_with_dead_letters(
    tmp_path: Path, kafka_bootstrap: str, group_id: str, topic: str, dead_letters: str
) -> None:
    """Run the archiver on the one-partition topic, copying its bad records to `dead_letters`,
    until the group has committed the topic's end."""
    config = archiver_config(
        tmp_path / "archiver.toml",
        kafka_bootstrap,
        group_id,
        [topic],
        records={"dead_letter_topic": dead_letters},
        rotation={"file_max_idle_s": 1.0},
    )
    archive_until_committed(config, kafka_bootstrap, group_id, topic, 1)


def test_copies_fit_a_dead_letter_topic_with_a_small_record_limit(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, tmp_path: Path
) -> None:
    """Many small copies are batched within the topic's limit; a value or a key too large for it is
    left out of its copy (whose headers give its size) and stays whole in the quarantine."""
    topic = topic_factory(1)
    dead_letters = f"{topic}-dead"
    create_topic(kafka_bootstrap, dead_letters, 1, {"max.message.bytes": str(TOPIC_LIMIT)})
    small_bad = [b"{not json " + bytes([65 + index % 26]) * 600 for index in range(40)]
    large_bad = b"[" + b"1," * 5000 + b"1]"
    records = [orjson.dumps({"n": 1}), *small_bad, large_bad, b"nope", orjson.dumps({"n": 2})]
    keys = [f"k{index}".encode() for index in range(len(records))]
    keys[42] = b"K" * 5000
    produce(kafka_bootstrap, topic, [(0, key, value) for key, value in zip(keys, records, strict=True)])
    _archive_with_dead_letters(tmp_path, kafka_bootstrap, group_id, topic, dead_letters)

    assert [row["_offset"] for row in read_rows(tmp_path / "archive", topic)] == [0, 43]
    quarantined = read_quarantine(tmp_path / "archive", topic)
    assert [(row["_key"], row["value"]) for row in quarantined] == list(zip(keys, records, strict=True))[1:43]
    letters = sorted(
        read_topic(kafka_bootstrap, dead_letters, 1), key=lambda r: int(r.headers["archiver.offset"])
    )
    assert [(letter.key, letter.value) for letter in letters] == [
        *zip(keys[1:41], small_bad, strict=True),
        (keys[41], None),
        (None, b"nope"),
    ]
    too_large_value, too_large_key = letters[-2].headers, letters[-1].headers
    assert too_large_value["archiver.value_omitted_bytes"] == str(len(large_bad)).encode()
    assert too_large_value["archiver.reason"] == b"not_an_object"
    assert too_large_key["archiver.key_omitted_bytes"] == b"5000"
    assert too_large_key["archiver.reason"] == b"invalid_json"
    assert not any(name.endswith("omitted_bytes") for letter in letters[:-2] for name in letter.headers)


def test_a_record_dated_later_than_the_dead_letter_topic_accepts_still_gets_its_copy(
    kafka_bootstrap: str, group_id: str, tmp_path: Path
) -> None:
    """The archived topic takes any timestamp; the dead-letter topic has the broker's default limit
    (message.timestamp.after.max.ms, one hour ahead). A bad record dated two hours ahead is still
    copied, with its own timestamp in a header, and the archiver goes on to the end of the topic."""
    topic = f"{group_id}-future"
    dead_letters = f"{topic}-dead"
    create_topic(kafka_bootstrap, dead_letters, 1)
    future_ms = int(time.time() * 1000) + 2 * 3600 * 1000
    produce_dated_to_a_lenient_topic(
        kafka_bootstrap, topic, [(b"{not json", future_ms), (orjson.dumps({"n": 1}), 0)]
    )
    _archive_with_dead_letters(tmp_path, kafka_bootstrap, group_id, topic, dead_letters)

    assert [row["_offset"] for row in read_rows(tmp_path / "archive", topic)] == [1]
    assert [row["_offset"] for row in read_quarantine(tmp_path / "archive", topic)] == [0]
    [letter] = read_topic(kafka_bootstrap, dead_letters, 1)
    assert letter.value == b"{not json"
    assert letter.headers["archiver.timestamp_ms"] == str(future_ms).encode()
    assert letter.timestamp_ms < future_ms - 3600 * 1000
