"""verify against the real broker: an archive written by the real daemon, then damaged on purpose."""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from consumer.config import KafkaSettings, Settings, load_settings
from consumer.errors import ExitCode
from consumer.kafka.inspect import KafkaInspector
from consumer.records import TopicPartition
from consumer.verify import verify_archive
from tests.support.archive import archive_until_committed, archiver_config
from tests.support.kafka_tools import end_offsets, produce

PARTITIONS = 2
RECORDS = 600


def _value(index: int) -> bytes | None:
    """Mostly good objects; every 37th is bad, every 53rd a tombstone."""
    if index % 37 == 5:
        return [b"{not json", b"[1, 2]", b'"text"'][index % 3]
    if index % 53 == 7:
        return None
    record: dict[str, Any] = {"id": index, "amount": index / 4, "user": f"u{index % 7}", "tags": [index % 3]}
    if index % 5 == 0:
        record["nested"] = {"a": index, "b": None}
    return orjson.dumps(record)


def _run_verify(settings: Settings, *, deep: bool) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = verify_archive(settings, deep=deep, as_json=True, sample=100, out=out)
    return code, orjson.loads(out.getvalue())


def _data_files(root: Path, topic: str, partition: int) -> list[Path]:
    return sorted((root / topic).glob(f"date=*/{topic}+{partition}+*.parquet"))


@pytest.fixture
def archived(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, tmp_path: Path
) -> tuple[Settings, str]:
    """A topic with bad records and tombstones, archived by the real daemon into small files."""
    topic = topic_factory(PARTITIONS)
    produce(kafka_bootstrap, topic, [(i % PARTITIONS, str(i).encode(), _value(i)) for i in range(RECORDS)])
    config = archiver_config(
        tmp_path / "a.toml",
        kafka_bootstrap,
        group_id,
        [topic],
        rotation={"file_max_idle_s": 1.0, "row_group_max_rows": 40, "file_max_row_groups": 1},
        kafka={"poll_max_messages": 50},
    )
    archive_until_committed(config, kafka_bootstrap, group_id, topic, PARTITIONS)
    return load_settings(config), topic


def test_daemon_archive_is_consistent_and_damage_is_found(
    archived: tuple[Settings, str], kafka_bootstrap: str
) -> None:
    """The daemon's archive verifies (plain and --deep); a deleted file is a gap, a copied one a duplicate."""
    settings, topic = archived
    root = Path(settings.output.root)
    code, report = _run_verify(settings, deep=False)
    assert (code, report["consistent"], report["findings"]) == (ExitCode.OK, True, [])
    ends = end_offsets(kafka_bootstrap, topic, PARTITIONS)
    assert {p["partition"]: p["committed"] for p in report["partitions"]} == ends
    assert all(
        p["segments"] >= 3 and p["archived_last_offset"] == ends[p["partition"]] - 1
        for p in report["partitions"]
    )

    code, report = _run_verify(settings, deep=True)
    assert (code, report["consistent"], report["findings"]) == (ExitCode.OK, True, [])

    first = _data_files(root, topic, 0)[0]
    aside = root.parent / "aside.parquet"
    shutil.move(first, aside)
    code, report = _run_verify(settings, deep=False)
    assert code == ExitCode.FATAL
    gaps = [f for f in report["findings"] if f["kind"] == "gap"]
    assert [(g["topic"], g["partition"], g["first_offset"]) for g in gaps] == [(topic, 0, 0)]
    shutil.move(aside, first)

    second = _data_files(root, topic, 1)[1]
    start = int(second.name.removesuffix(".parquet").rsplit("+", 1)[1])
    shutil.copy(second, second.with_name(f"{topic}+1+{start + 1:020d}.parquet"))
    code, report = _run_verify(settings, deep=True)
    assert code == ExitCode.FATAL
    duplicates = [f for f in report["findings"] if f["kind"] == "duplicate" and f["partition"] == 1]
    assert any("more than one row of the archive" in f["detail"] for f in duplicates)
    assert all(f["partition"] == 1 for f in report["findings"])


def test_inspector_sees_pattern_topics_offsets_and_records(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str
) -> None:
    """KafkaInspector: topics by pattern, watermarks, no committed offset yet, and records as plain tuples."""
    topic = topic_factory(1)
    produce(kafka_bootstrap, topic, [(0, f"k{i}".encode(), None if i == 3 else b"{}") for i in range(10)])
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, group_id=group_id, topic_pattern=topic)
    inspector = KafkaInspector(settings)
    try:
        view = inspector.describe()
        assert [(s.tp, s.low, s.high, s.committed) for s in view.partitions] == [
            (TopicPartition(topic, 0), 0, 10, None)
        ]
        records = list(inspector.read(TopicPartition(topic, 0), 2, 6, time.monotonic() + 30))
    finally:
        inspector.close()
    assert [(r.offset, r.key, r.value) for r in records] == [
        (2, b"k2", b"{}"),
        (3, b"k3", None),
        (4, b"k4", b"{}"),
        (5, b"k5", b"{}"),
    ]
    assert all(isinstance(r.timestamp_ms, int) for r in records)


def test_inspector_reads_partitions_one_after_another_without_waiting_for_the_broker(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str
) -> None:
    """`verify --deep` reads every partition's tail, one partition after another. A read ends with
    the range's last record, or at the partition's end when the range goes past it, and the next
    partition's records come at once. Before, the broker held each empty fetch for
    fetch.wait.max.ms (0.5 s): a read past the end waited for it, and so did the next partition's
    first fetch; and a poll of READ_BATCH records waited out its POLL_S (1 s) for the rest."""
    topic = topic_factory(2)
    produce(kafka_bootstrap, topic, [(partition, None, b"{}") for partition in (0, 1) for _ in range(10)])
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, group_id=group_id, topics=(topic,))
    inspector = KafkaInspector(settings)
    reads: list[tuple[list[int], float]] = []
    try:
        inspector.describe()  # connected: the timings below are the reads alone
        for partition, start, end in ((0, 4, 10), (1, 3, 12), (0, 0, 10)):
            started = time.monotonic()
            records = inspector.read(TopicPartition(topic, partition), start, end, started + 30)
            offsets = [record.offset for record in records]
            reads.append((offsets, time.monotonic() - started))
    finally:
        inspector.close()
    assert [offsets for offsets, _ in reads] == [list(range(4, 10)), list(range(3, 10)), list(range(10))]
    assert max(took for _, took in reads) < 0.3, f"the reads took {[round(took, 2) for _, took in reads]} s"


def test_inspector_reports_listed_topics_the_cluster_lacks(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str
) -> None:
    """A listed topic that does not exist is named as missing, the others are described."""
    topic = topic_factory(2)
    missing = f"{topic}-absent"
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, group_id=group_id, topics=(topic, missing))
    inspector = KafkaInspector(settings)
    try:
        view = inspector.describe()
    finally:
        inspector.close()
    assert view.missing_topics == [missing]
    assert [state.tp for state in view.partitions] == [TopicPartition(topic, 0), TopicPartition(topic, 1)]
