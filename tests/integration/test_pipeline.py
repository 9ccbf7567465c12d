"""The archiving pipeline end to end: real broker, the real command, DuckDB reading the output."""

from __future__ import annotations

import io
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from consumer.config import load_settings
from consumer.errors import ExitCode
from consumer.verify import verify_archive
from tests.support.archive import (
    archive_until_committed,
    archiver_config,
    data_columns,
    read_quarantine,
    read_rows,
    rebuild,
    wait_until_committed,
)
from tests.support.daemon import DaemonProcess
from tests.support.kafka_tools import (
    committed_offsets,
    end_offsets,
    produce,
    produce_dated_to_a_lenient_topic,
)
from tests.support.mixed import produce_mixed


def test_archives_every_record_exactly_with_bad_ones_quarantined(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, tmp_path: Path
) -> None:
    """Good records come back from DuckDB with their content, bad ones are quarantined, offsets committed."""
    topic = topic_factory(3)
    good, rejected = produce_mixed(kafka_bootstrap, topic, 3, 3000)
    config = archiver_config(
        tmp_path / "a.toml",
        kafka_bootstrap,
        group_id,
        [topic],
        records={"max_value_bytes": 4096},
        rotation={"file_max_idle_s": 1.0},
    )
    archive_until_committed(config, kafka_bootstrap, group_id, topic, 3)
    root = tmp_path / "archive"
    rows = read_rows(root, topic)
    columns = data_columns(rows)
    archived = {(row["_partition"], row["_offset"]): rebuild(row, columns) for row in rows}
    assert len(archived) == len(rows)  # no (partition, offset) twice
    assert archived == good
    quarantined = {(row["_partition"], row["_offset"]): row["reason"] for row in read_quarantine(root, topic)}
    assert quarantined == rejected
    assert committed_offsets(kafka_bootstrap, group_id, topic, 3) == end_offsets(kafka_bootstrap, topic, 3)
    assert {"id", "user", "amount", "active", "tags", "address"} <= set(columns)


def test_a_timestamp_no_column_can_hold_quarantines_its_record_and_the_archive_goes_on(
    kafka_bootstrap: str, group_id: str, tmp_path: Path
) -> None:
    """A topic may keep any 64-bit timestamp (message.timestamp.after.max.ms at its largest), and a
    producer that passes nanoseconds as milliseconds writes one that no microsecond column holds.
    That record is quarantined with its timestamp in the detail; its neighbours are archived and
    every offset is committed."""
    topic = f"{group_id}-timestamps"
    nanoseconds = 1_704_067_200_000_000_000
    stamps = [1_704_067_200_000, nanoseconds, 1_704_067_200_002]
    produce_dated_to_a_lenient_topic(
        kafka_bootstrap, topic, [(orjson.dumps({"n": index}), stamp) for index, stamp in enumerate(stamps)]
    )
    config = archiver_config(
        tmp_path / "a.toml", kafka_bootstrap, group_id, [topic], rotation={"file_max_idle_s": 1.0}
    )
    archive_until_committed(config, kafka_bootstrap, group_id, topic, 1)
    root = tmp_path / "archive"
    assert [(row["_offset"], row["_timestamp"]) for row in read_rows(root, topic)] == [
        (0, datetime(2024, 1, 1, tzinfo=UTC)),
        (2, datetime(2024, 1, 1, 0, 0, 0, 2000, tzinfo=UTC)),
    ]
    [quarantined] = read_quarantine(root, topic)
    assert (quarantined["_offset"], quarantined["reason"], quarantined["_timestamp"]) == (
        1,
        "timestamp_out_of_range",
        None,
    )
    assert str(nanoseconds) in quarantined["detail"]
    assert committed_offsets(kafka_bootstrap, group_id, topic, 1) == {0: 3}
    report = io.StringIO()
    code = verify_archive(load_settings(config), deep=True, as_json=True, sample=100, out=report)
    assert (code, orjson.loads(report.getvalue())["findings"]) == (ExitCode.OK, [])


def test_files_rotate_by_size_within_the_cap(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, tmp_path: Path
) -> None:
    """A small file_max_bytes: several files per partition, each under the cap before its last row group."""
    topic = topic_factory(2)
    rng = random.Random(3)
    produce(
        kafka_bootstrap,
        topic,
        [(i % 2, None, orjson.dumps({"i": i, "text": rng.randbytes(120).hex()})) for i in range(8000)],
    )
    cap = 65536
    config = archiver_config(
        tmp_path / "a.toml",
        kafka_bootstrap,
        group_id,
        [topic],
        rotation={"file_max_bytes": cap, "row_group_max_bytes": 65536, "file_max_idle_s": 1.0},
        kafka={"poll_max_messages": 200},
    )
    daemon = archive_until_committed(config, kafka_bootstrap, group_id, topic, 2)
    files = sorted((tmp_path / "archive" / topic).glob("**/*.parquet"))
    per_partition = Counter(path.name.split("+")[1] for path in files)
    assert min(per_partition.values()) >= 3, per_partition
    reasons = Counter(event["reason"] for event in daemon.named("file_committed"))
    assert reasons["size"] >= 4
    for path in files:
        metadata = pq.ParquetFile(path).metadata
        last = metadata.row_group(metadata.num_row_groups - 1)
        last_group_bytes = sum(last.column(i).total_compressed_size for i in range(last.num_columns))
        footer_bytes = int.from_bytes(path.read_bytes()[-8:-4], "little") + 8
        assert path.stat().st_size - last_group_bytes - footer_bytes < cap, path.name
    assert len(read_rows(tmp_path / "archive", topic)) == 8000


def test_quiet_partition_finishes_by_age_without_new_records(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, tmp_path: Path
) -> None:
    """A file is finished and committed when it reaches file_max_age_s, though nothing else arrives."""
    topic = topic_factory(1)
    config = archiver_config(
        tmp_path / "a.toml",
        kafka_bootstrap,
        group_id,
        [topic],
        rotation={"file_max_age_s": 2.0, "file_max_idle_s": 600.0},
    )
    daemon = DaemonProcess(config)
    try:
        daemon.wait_for_event("partitions_assigned")
        produce(kafka_bootstrap, topic, [(0, None, b'{"quiet": true}') for _ in range(5)])
        event = daemon.wait_for_event("file_committed", timeout_s=30)
        wait_until_committed(kafka_bootstrap, group_id, topic, 1, timeout_s=10)
    finally:
        assert daemon.stop() == ExitCode.OK, daemon.describe()
    assert event["reason"] == "age"
    assert event["rows"] == 5
    assert 2.0 <= event["age_s"] < 10.0


def test_memory_pressure_flushes_largest_buffers_and_loses_nothing(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, tmp_path: Path
) -> None:
    """Many partitions, a small budget: flushes happen, memory stays bounded, nothing is lost."""
    partitions = 12
    topic = topic_factory(partitions)
    rng = random.Random(5)
    count = 24000
    produce(
        kafka_bootstrap,
        topic,
        [
            (i % partitions, None, orjson.dumps({"i": i, "blob": rng.randbytes(100).hex()}))
            for i in range(count)
        ],
    )
    budget = 1024 * 1024
    config = archiver_config(
        tmp_path / "a.toml",
        kafka_bootstrap,
        group_id,
        [topic],
        memory={"max_buffered_bytes": budget},
        rotation={"row_group_max_bytes": budget, "file_max_idle_s": 2.0},
        kafka={"poll_max_messages": 500},
        stats={"interval_s": 0.2},
    )
    daemon = archive_until_committed(config, kafka_bootstrap, group_id, topic, partitions)
    stats = daemon.named("stats")
    assert stats[-1]["flushes_on_pressure"] > 0
    assert max(event["buffered_bytes"] for event in stats) <= budget
    # One poll of 500 records converts to well under 1 MiB; writing a row group needs encode buffers.
    assert max(event["arrow_peak_bytes"] for event in stats) <= budget + 4 * 1024 * 1024
    rows = read_rows(tmp_path / "archive", topic)
    assert sorted(row["i"] for row in rows) == list(range(count))


def test_a_member_joining_mid_run_leaves_every_record_archived_once(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, tmp_path: Path
) -> None:
    """A second daemon joins mid-run; revoked partitions are finished and committed, nothing is doubled."""
    partitions = 4
    topic = topic_factory(partitions)
    first_half = [(i % partitions, None, orjson.dumps({"i": i})) for i in range(4000)]
    second_half = [(i % partitions, None, orjson.dumps({"i": i})) for i in range(4000, 8000)]
    produce(kafka_bootstrap, topic, first_half)
    rotation = {"file_max_idle_s": 1.0}
    first = DaemonProcess(
        archiver_config(tmp_path / "a.toml", kafka_bootstrap, group_id, [topic], rotation=rotation)
    )
    second: DaemonProcess | None = None
    try:
        first.wait_for_event("file_committed", timeout_s=60)
        second = DaemonProcess(
            archiver_config(tmp_path / "b.toml", kafka_bootstrap, group_id, [topic], rotation=rotation)
        )
        second.wait_for_event("partitions_assigned", timeout_s=60)
        first.wait_for_event("partitions_revoked", timeout_s=60)
        produce(kafka_bootstrap, topic, second_half)
        wait_until_committed(kafka_bootstrap, group_id, topic, partitions)
    finally:
        assert first.stop() == ExitCode.OK, first.describe()
        if second is not None:
            assert second.stop() == ExitCode.OK, second.describe()
    rows = read_rows(tmp_path / "archive", topic)
    assert Counter((row["_partition"], row["_offset"]) for row in rows).most_common(1)[0][1] == 1
    assert sorted(row["i"] for row in rows) == list(range(8000))
