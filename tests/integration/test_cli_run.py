"""The real command against the real broker: it joins the group and stops cleanly on SIGTERM."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psutil

from consumer.cli import main
from consumer.errors import ExitCode
from tests.support.archive import archiver_config
from tests.support.daemon import DaemonProcess, write_config
from tests.support.kafka_tools import wait_for_topic


def test_run_joins_the_group_and_exits_zero_on_sigterm(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, tmp_path: Path
) -> None:
    """`run` logs the assignment of every partition, then SIGTERM ends it with exit code 0."""
    topic = topic_factory(2)
    config = write_config(
        tmp_path / "archiver.toml",
        {
            "kafka": {"bootstrap_servers": kafka_bootstrap, "group_id": group_id, "topics": [topic]},
            "output": {"root": str(tmp_path / "archive")},
        },
    )
    daemon = DaemonProcess(config)
    try:
        event = daemon.wait_for_event("partitions_assigned", timeout_s=60)
        assert sorted(event["partitions"]) == [f"{topic}[0]", f"{topic}[1]"]
    finally:
        code = daemon.stop()
    assert code == ExitCode.OK, daemon.describe()
    assert daemon.named("daemon_stopped")


def test_run_exits_with_config_code_on_invalid_settings(tmp_path: Path) -> None:
    """An invalid file stops `run` before connecting, with the config exit code."""
    config = write_config(tmp_path / "archiver.toml", {"rotation": {"file_max_bytes": -1}})
    daemon = DaemonProcess(config)
    assert daemon.wait() == ExitCode.CONFIG
    assert any("rotation.file_max_bytes = -1" in line for line in daemon.stderr_lines)


def test_run_reports_a_property_librdkafka_refuses_as_a_config_error(
    kafka_bootstrap: str, group_id: str, tmp_path: Path
) -> None:
    """An unknown [kafka.properties] key ends `run` with the config exit code and names the key."""
    config = write_config(
        tmp_path / "archiver.toml",
        {
            "kafka": {
                "bootstrap_servers": kafka_bootstrap,
                "group_id": group_id,
                "topics": ["x"],
                "properties": {"no.such.property": 1},
            }
        },
    )
    daemon = DaemonProcess(config)
    assert daemon.wait() == ExitCode.CONFIG
    assert any(
        'kafka.properties: No such configuration property: "no.such.property"' in line
        for line in daemon.stderr_lines
    ), daemon.describe()


def test_a_missing_dead_letter_topic_stops_run_before_it_joins_the_group(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, tmp_path: Path
) -> None:
    """records.dead_letter_topic must exist: `run` names it and exits 1 without consuming anything."""
    topic = topic_factory(1)
    config = archiver_config(
        tmp_path / "archiver.toml",
        kafka_bootstrap,
        group_id,
        [topic],
        records={"dead_letter_topic": f"{topic}-no-such-dead-letters"},
    )
    daemon = DaemonProcess(config)
    assert daemon.wait() == ExitCode.FATAL, daemon.describe()
    (failure,) = daemon.named("fatal_error")
    assert f"topic {topic}-no-such-dead-letters does not exist" in failure["error"]
    assert not daemon.named("partitions_assigned")


def test_create_topics_creates_the_dead_letter_topic_too(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, tmp_path: Path
) -> None:
    """`create-topics` creates every configured topic that is missing, the dead-letter topic included."""
    topic = topic_factory(1)
    dead_letters = f"{topic}-dead"
    config = archiver_config(
        tmp_path / "archiver.toml",
        kafka_bootstrap,
        group_id,
        [topic],
        records={"dead_letter_topic": dead_letters},
    )
    assert main(["create-topics", "--config", str(config), "--partitions", "2"]) == ExitCode.OK
    wait_for_topic(kafka_bootstrap, dead_letters, 2)


def test_sigterm_while_waiting_for_the_cluster_exits_cleanly_at_once(group_id: str, tmp_path: Path) -> None:
    """A SIGTERM during start-up, while Kafka does not answer yet, ends the retries with exit 0."""
    config = write_config(
        tmp_path / "archiver.toml",
        {
            "kafka": {"bootstrap_servers": "127.0.0.1:1", "group_id": group_id, "topics": ["x"]},
            "output": {"root": str(tmp_path / "archive")},
        },
    )
    daemon = DaemonProcess(config)
    daemon.wait_for_event("kafka_unreachable", timeout_s=60)
    started = time.monotonic()
    assert daemon.stop(timeout_s=30) == ExitCode.OK, daemon.describe()
    assert time.monotonic() - started < 15
    assert daemon.named("daemon_stopped")


def test_run_uses_the_configured_allocator_and_leaves_numpy_out(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, tmp_path: Path
) -> None:
    """memory.allocator wins over ARROW_DEFAULT_MEMORY_POOL; numpy, unused, is never loaded."""
    topic = topic_factory(1)
    config = archiver_config(
        tmp_path / "archiver.toml", kafka_bootstrap, group_id, [topic], memory={"allocator": "system"}
    )
    daemon = DaemonProcess(config, env={"ARROW_DEFAULT_MEMORY_POOL": "mimalloc"})
    try:
        stats = daemon.wait_for_event("stats", timeout_s=60)
        mapped = [region.path for region in psutil.Process(daemon.process.pid).memory_maps()]
    finally:
        code = daemon.stop()
    assert code == ExitCode.OK, daemon.describe()
    assert stats["arrow_backend"] == "system"
    assert any("pyarrow" in path for path in mapped)
    assert not [path for path in mapped if "numpy" in path]
