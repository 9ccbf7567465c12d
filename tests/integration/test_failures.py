"""Exactly once under failures: kill -9 at random moments, a dying member, a broker restart, a full disk."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from consumer.errors import ExitCode
from tests.support.archive import (
    archive_until_committed,
    archiver_config,
    wait_until_committed,
)
from tests.support.broker import local_broker
from tests.support.daemon import DaemonProcess
from tests.support.exactly_once import SteadyProducer, assert_archived_exactly_once, kill_storm, record
from tests.support.kafka_tools import committed_offsets, create_topic, produce


def _kill_storm_config(tmp_path: Path, bootstrap: str, group: str, topic: str) -> Path:
    # Small files and short timers, so that many files finish and kills often land near a finish.
    # Static membership lets each restarted daemon take its partitions back without waiting for the
    # killed one's session to expire, as a restart under systemd with group.instance.id would.
    return archiver_config(
        tmp_path / "a.toml",
        bootstrap,
        group,
        [topic],
        rotation={
            "file_max_bytes": 128 * 1024,
            "row_group_max_bytes": 64 * 1024,
            "file_max_age_s": 2.0,
            "file_max_idle_s": 1.0,
        },
        kafka={"poll_max_messages": 2000, "properties": {"group.instance.id": f"{group}-storm"}},
    )


def test_kill_9_storm_leaves_every_record_exactly_once(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, tmp_path: Path
) -> None:
    """200k records while the daemon is killed with SIGKILL a dozen times: each ends up exactly once."""
    partitions, count = 3, 200_000
    topic = topic_factory(partitions)
    config = _kill_storm_config(tmp_path, kafka_bootstrap, group_id, topic)
    producer = SteadyProducer(kafka_bootstrap, topic, partitions, count, duration_s=30)
    kill_storm(config, producer, least_kills=12, seed=11, longest_pause_s=2.5)
    archive_until_committed(config, kafka_bootstrap, group_id, topic, partitions)
    assert_archived_exactly_once(tmp_path / "archive", topic, count, partitions)
    assert not list((tmp_path / "archive").glob("**/.*.inprogress"))


def test_surviving_member_takes_over_a_killed_ones_partitions(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, tmp_path: Path
) -> None:
    """Two daemons share a group; one is killed mid-run; the other finishes without loss or duplicates."""
    partitions, count = 4, 40_000
    topic = topic_factory(partitions)
    rotation = {"file_max_idle_s": 1.0, "file_max_age_s": 3.0}
    producer = SteadyProducer(kafka_bootstrap, topic, partitions, count, duration_s=12)
    first = DaemonProcess(
        archiver_config(tmp_path / "a.toml", kafka_bootstrap, group_id, [topic], rotation=rotation)
    )
    second = DaemonProcess(
        archiver_config(tmp_path / "b.toml", kafka_bootstrap, group_id, [topic], rotation=rotation)
    )
    try:
        first.wait_for_event("file_committed", timeout_s=60)
        second.wait_for_event("partitions_assigned", timeout_s=60)
        time.sleep(2)
        first.kill()
        producer.join()
        wait_until_committed(kafka_bootstrap, group_id, topic, partitions, timeout_s=120)
    finally:
        first.kill()
        assert second.stop() == ExitCode.OK, second.describe()
    taken_over = set().union(*(set(event["partitions"]) for event in second.named("partitions_assigned")))
    assert taken_over == {f"{topic}[{partition}]" for partition in range(partitions)}
    assert_archived_exactly_once(tmp_path / "archive", topic, count, partitions)


@pytest.fixture
def own_broker() -> Iterator[str]:
    """A broker of this test's own (port 39192), so that stopping it disturbs no other test."""
    with local_broker(port="39192") as bootstrap:
        yield bootstrap


def test_broker_restart_mid_run_loses_and_doubles_nothing(
    own_broker: str, group_id: str, tmp_path: Path
) -> None:
    """The broker is stopped and started while the daemon runs; the archive ends up exactly once."""
    from tests.support.broker import local_broker_command  # noqa: PLC0415 - only this test restarts brokers

    partitions, count = 2, 20_000
    topic = f"restart-{group_id[-8:]}"
    create_topic(own_broker, topic, partitions)
    produce(own_broker, topic, [(i % partitions, None, record(i)) for i in range(count // 2)])
    config = archiver_config(
        tmp_path / "a.toml",
        own_broker,
        group_id,
        [topic],
        rotation={"file_max_idle_s": 1.0, "file_max_age_s": 2.0},
    )
    daemon = DaemonProcess(config)
    try:
        daemon.wait_for_event("file_committed", timeout_s=60)
        local_broker_command("stop", port="39192")
        time.sleep(3)  # the daemon keeps running without a broker
        assert daemon.process.poll() is None, daemon.describe()
        local_broker_command("start", port="39192")
        produce(own_broker, topic, [(i % partitions, None, record(i)) for i in range(count // 2, count)])
        wait_until_committed(
            own_broker,
            group_id,
            topic,
            partitions,
            timeout_s=120,
            alive=lambda: daemon.process.poll() is None,
        )
    finally:
        code = daemon.stop()
    assert code == ExitCode.OK, daemon.describe()
    assert_archived_exactly_once(tmp_path / "archive", topic, count, partitions)


def _limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_file_size_limit_fails_cleanly_and_a_restart_completes_the_archive(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, tmp_path: Path
) -> None:
    """A write past RLIMIT_FSIZE: clear error, exit 1, nothing committed past durable data; then recovery."""
    partitions, count = 2, 30_000
    topic = topic_factory(partitions)
    produce(kafka_bootstrap, topic, [(i % partitions, None, record(i)) for i in range(count)])
    config = archiver_config(
        tmp_path / "a.toml",
        kafka_bootstrap,
        group_id,
        [topic],
        rotation={
            "file_max_bytes": 4 * 1024 * 1024,
            "row_group_max_bytes": 64 * 1024,
            "file_max_idle_s": 1.0,
        },
        kafka={"poll_max_messages": 1000},
    )
    limited = DaemonProcess(config, preexec_fn=_limit_file_size(40 * 1024))
    assert limited.wait(timeout_s=120) == ExitCode.FATAL, limited.describe()
    fatal = limited.named("fatal_error")
    assert fatal
    assert fatal[0]["kind"] == "StorageError"
    assert "File too large" in fatal[0]["error"]
    root = tmp_path / "archive"
    assert not list(root.glob("**/.*.inprogress")), "the in-progress file was not discarded"
    finished = list(root.glob(f"{topic}/**/*.parquet"))
    archived_end = dict.fromkeys(range(partitions), 0)
    for path in finished:  # every finished file is readable, and the group never got ahead of them
        table = pq.read_table(path)
        partition = int(path.name.split("+")[1])
        archived_end[partition] = max(archived_end[partition], max(table.column("_offset").to_pylist()) + 1)
    committed = committed_offsets(kafka_bootstrap, group_id, topic, partitions)
    for partition, offset in committed.items():
        assert offset <= archived_end[partition] or offset < 0
    archive_until_committed(config, kafka_bootstrap, group_id, topic, partitions)
    assert_archived_exactly_once(root, topic, count, partitions)
