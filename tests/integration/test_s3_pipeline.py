"""The daemon archiving into an S3 bucket (a local moto server): end to end, kill -9, faults, verify."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from consumer.config import Settings, load_settings
from consumer.errors import ExitCode
from consumer.verify import verify_archive
from tests.support.archive import (
    archive_until_committed,
    archiver_config,
    data_columns,
    read_quarantine,
    read_rows,
    rebuild,
)
from tests.support.daemon import DaemonProcess
from tests.support.exactly_once import SteadyProducer, assert_archived_exactly_once, kill_storm, record
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.kafka_tools import committed_offsets, end_offsets, produce
from tests.support.mixed import produce_mixed
from tests.support.s3 import PREFIX, client, download, incomplete_uploads, object_keys, s3_output, sizes

PART = 5 * 1024 * 1024


def _config(
    tmp_path: Path, bootstrap: str, group: str, topic: str, output: dict[str, Any], **sections: Any
) -> Path:
    return archiver_config(tmp_path / "a.toml", bootstrap, group, [topic], output=output, **sections)


def _verify(settings: Settings, deep: bool) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = verify_archive(settings, deep=deep, as_json=True, sample=200, out=out)
    return code, orjson.loads(out.getvalue())


def _assert_bucket_archived_exactly_once(
    endpoint: str, bucket: str, copy: Path, topic: str, count: int, partitions: int, *, pad_bytes: int = 0
) -> None:
    """No upload left open, and every record of the topic in the bucket once (read from a copy)."""
    assert incomplete_uploads(endpoint, bucket) == []
    assert_archived_exactly_once(download(endpoint, bucket, copy), topic, count, partitions, pad_bytes)


def _assert_deep_verify_finds_nothing(settings: Settings) -> None:
    code, report = _verify(settings, deep=True)
    assert (code, report["findings"]) == (ExitCode.OK, [])


def _data_keys(endpoint: str, bucket: str, topic: str, partition: int) -> list[str]:
    return [
        key for key in object_keys(endpoint, bucket, f"{PREFIX}/{topic}/") if f"/{topic}+{partition}+" in key
    ]


def test_archives_into_the_bucket_and_verify_checks_it(
    kafka_bootstrap: str,
    topic_factory: Callable[[int], str],
    group_id: str,
    tmp_path: Path,
    s3_endpoint: str,
    bucket: str,
) -> None:
    """Content and quarantine come back exactly; verify finds the bucket consistent, then its damage."""
    topic = topic_factory(3)
    good, rejected = produce_mixed(kafka_bootstrap, topic, 3, 3000)
    config = _config(
        tmp_path,
        kafka_bootstrap,
        group_id,
        topic,
        s3_output(s3_endpoint, bucket),
        records={"max_value_bytes": 4096},
        rotation={"file_max_idle_s": 1.0, "row_group_max_rows": 300, "file_max_row_groups": 2},
        kafka={"poll_max_messages": 100},
    )
    archive_until_committed(config, kafka_bootstrap, group_id, topic, 3)
    root = download(s3_endpoint, bucket, tmp_path / "copy")
    rows = read_rows(root, topic)
    columns = data_columns(rows)
    assert {(row["_partition"], row["_offset"]): rebuild(row, columns) for row in rows} == good
    assert len(rows) == len(good)
    quarantined = {(row["_partition"], row["_offset"]): row["reason"] for row in read_quarantine(root, topic)}
    assert quarantined == rejected
    assert incomplete_uploads(s3_endpoint, bucket) == []

    settings = load_settings(config)
    for deep in (False, True):
        code, report = _verify(settings, deep)
        assert (code, report["findings"]) == (ExitCode.OK, [])
    ends = end_offsets(kafka_bootstrap, topic, 3)
    assert {p["partition"]: p["committed"] for p in report["partitions"]} == ends

    s3 = client(s3_endpoint)
    first, second = _data_keys(s3_endpoint, bucket, topic, 0)[:2]
    s3.delete_object(Bucket=bucket, Key=first)
    start = int(second.removesuffix(".parquet").rsplit("+", 1)[1])
    copy = second.replace(f"+{start:020d}.parquet", f"+{start + 1:020d}.parquet")
    s3.copy_object(Bucket=bucket, Key=copy, CopySource={"Bucket": bucket, "Key": second})
    code, report = _verify(settings, deep=True)
    assert code == ExitCode.FATAL
    kinds = {(finding["kind"], finding["partition"]) for finding in report["findings"]}
    assert ("gap", 0) in kinds
    assert ("duplicate", 0) in kinds

    cli = subprocess.run(
        [sys.executable, "-m", "consumer", "verify", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cli.returncode == ExitCode.FATAL, cli.stderr
    assert "INCONSISTENT" in cli.stdout
    assert "Traceback" not in cli.stderr


def test_kill_9_storm_against_the_bucket_leaves_every_record_exactly_once(
    kafka_bootstrap: str,
    topic_factory: Callable[[int], str],
    group_id: str,
    tmp_path: Path,
    s3_endpoint: str,
    bucket: str,
) -> None:
    """50k records while the daemon is killed with SIGKILL at least ten times: each ends up exactly once."""
    partitions, count, pad = 3, 50_000, 200
    topic = topic_factory(partitions)
    config = _config(
        tmp_path,
        kafka_bootstrap,
        group_id,
        topic,
        s3_output(s3_endpoint, bucket),
        rotation={
            "file_max_bytes": 12 * 1024 * 1024,
            "row_group_max_bytes": 512 * 1024,
            "file_max_age_s": 3.0,
            "file_max_idle_s": 1.0,
        },
        kafka={"poll_max_messages": 2000, "properties": {"group.instance.id": f"{group_id}-storm"}},
    )
    producer = SteadyProducer(kafka_bootstrap, topic, partitions, count, duration_s=12, pad_bytes=pad)
    kill_storm(config, producer, least_kills=10, seed=13, longest_pause_s=1.5)
    archive_until_committed(config, kafka_bootstrap, group_id, topic, partitions)
    _assert_bucket_archived_exactly_once(
        s3_endpoint, bucket, tmp_path / "copy", topic, count, partitions, pad_bytes=pad
    )
    _assert_deep_verify_finds_nothing(load_settings(config))


def test_kill_9_during_a_multipart_upload_publishes_nothing_and_recovery_aborts_it(
    kafka_bootstrap: str,
    topic_factory: Callable[[int], str],
    group_id: str,
    tmp_path: Path,
    s3_endpoint: str,
    bucket: str,
) -> None:
    """Killed with parts uploaded: no object, an upload left; the next start aborts it and resumes."""
    count, pad = 24_000, 800
    topic = topic_factory(1)
    produce(kafka_bootstrap, topic, [(0, None, record(i, pad)) for i in range(count)])
    config = _config(
        tmp_path,
        kafka_bootstrap,
        group_id,
        topic,
        s3_output(s3_endpoint, bucket),
        rotation={
            "file_max_bytes": 64 * 1024 * 1024,
            "row_group_max_bytes": 1024 * 1024,
            "file_max_idle_s": 1.0,
        },
    )
    daemon = DaemonProcess(config)
    deadline = time.monotonic() + 60
    while not incomplete_uploads(s3_endpoint, bucket):
        assert time.monotonic() < deadline, daemon.describe()
        assert daemon.process.poll() is None, daemon.describe()
        time.sleep(0.05)
    daemon.process.send_signal(signal.SIGKILL)
    daemon.wait()
    (stale,) = incomplete_uploads(s3_endpoint, bucket)
    assert stale not in object_keys(s3_endpoint, bucket)
    assert committed_offsets(kafka_bootstrap, group_id, topic, 1)[0] < count

    restarted = archive_until_committed(config, kafka_bootstrap, group_id, topic, 1)
    (deleted,) = restarted.named("stale_file_deleted")
    assert deleted["path"].endswith(".inprogress")
    assert max(sizes(s3_endpoint, bucket).values()) > PART  # the restart's file went in parts too
    _assert_bucket_archived_exactly_once(
        s3_endpoint, bucket, tmp_path / "copy", topic, count, 1, pad_bytes=pad
    )


def test_injected_faults_are_retried_and_the_archive_is_exactly_once(
    kafka_bootstrap: str,
    topic_factory: Callable[[int], str],
    group_id: str,
    tmp_path: Path,
    s3_endpoint: str,
    bucket: str,
) -> None:
    """A fifth of the requests fail (5xx, throttling, drops, timeouts, lost answers): still exactly once."""
    partitions, count, pad = 2, 30_000, 1600
    topic = topic_factory(partitions)
    halves = [range(count // 2), range(count // 2, count)]
    largest = 0
    # Every kind twice, but timeouts (the slowest) once.
    faults = (*Fault, Fault.ERROR, Fault.SLOW_DOWN, Fault.DROP_REQUEST, Fault.DROP_RESPONSE)
    with FaultProxy(s3_endpoint, rate=0.2, seed=5, hold_s=2.5, faults=faults) as proxy:
        config = _config(
            tmp_path,
            kafka_bootstrap,
            group_id,
            topic,
            s3_output(proxy.endpoint, bucket, request_timeout_s=2.0, retry_max_attempts=10),
            rotation={"file_max_row_groups": 12, "row_group_max_bytes": 1024 * 1024, "file_max_idle_s": 1.0},
        )
        for half, reads in zip(halves, ([], ["HEAD", "GET"]), strict=True):
            produce(kafka_bootstrap, topic, [(i % partitions, None, record(i, pad)) for i in half])
            for fault, method in zip(Fault, ["POST", "PUT", "POST", "PUT", *reads], strict=False):
                proxy.once(fault, method)  # every kind of fault, on uploads and on recovery's reads
            daemon = archive_until_committed(config, kafka_bootstrap, group_id, topic, partitions)
            largest = max(largest, *(event["bytes"] for event in daemon.named("file_committed")))
    assert set(proxy.injected) == set(Fault), proxy.injected
    assert sum(proxy.injected.values()) >= 15, proxy.injected
    assert largest > PART  # some files went up in several parts
    _assert_bucket_archived_exactly_once(
        s3_endpoint, bucket, tmp_path / "copy", topic, count, partitions, pad_bytes=pad
    )
    direct = load_settings(
        _config(tmp_path, kafka_bootstrap, group_id, topic, s3_output(s3_endpoint, bucket))
    )
    _assert_deep_verify_finds_nothing(direct)


def test_an_outage_past_the_retries_exits_1_and_a_restart_completes_the_archive(
    kafka_bootstrap: str,
    topic_factory: Callable[[int], str],
    group_id: str,
    tmp_path: Path,
    s3_endpoint: str,
    bucket: str,
) -> None:
    """The server stops answering: clear error, exit 1, nothing committed past the bucket; then recovery."""
    partitions, count = 2, 30_000
    topic = topic_factory(partitions)
    produce(kafka_bootstrap, topic, [(i % partitions, None, record(i)) for i in range(count)])
    with FaultProxy(s3_endpoint) as proxy:
        config = _config(
            tmp_path,
            kafka_bootstrap,
            group_id,
            topic,
            s3_output(proxy.endpoint, bucket, retry_max_attempts=3),
            rotation={"file_max_bytes": 64 * 1024, "row_group_max_bytes": 64 * 1024, "file_max_idle_s": 1.0},
            kafka={"poll_max_messages": 500},
        )
        failing = DaemonProcess(config)
        failing.wait_for_event("file_committed", timeout_s=60)
        proxy.fail_all = True
        assert failing.wait(timeout_s=120) == ExitCode.FATAL, failing.describe()
        (fatal,) = failing.named("fatal_error")
        assert fatal["kind"] == "StorageError"
        assert "SlowDown (HTTP 503)" in fatal["error"]
        assert f"s3://{bucket}/{PREFIX}/" in fatal["error"]
        archived_end = _archived_ends(tmp_path / "partial", s3_endpoint, bucket, topic, partitions)
        for partition, offset in committed_offsets(kafka_bootstrap, group_id, topic, partitions).items():
            assert offset <= archived_end[partition] or offset < 0
        proxy.fail_all = False
        archive_until_committed(config, kafka_bootstrap, group_id, topic, partitions)
    _assert_bucket_archived_exactly_once(s3_endpoint, bucket, tmp_path / "copy", topic, count, partitions)


def _archived_ends(copy: Path, endpoint: str, bucket: str, topic: str, partitions: int) -> dict[int, int]:
    """The offset after the last archived row of each partition (0 when none)."""
    rows = read_rows(download(endpoint, bucket, copy), topic) + read_quarantine(copy, topic)
    ends = dict.fromkeys(range(partitions), 0)
    for row in rows:
        ends[row["_partition"]] = max(ends[row["_partition"]], row["_offset"] + 1)
    return ends
