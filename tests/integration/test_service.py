"""Running as a service: systemd notifications, the metrics endpoint, and what a stalled loop looks like."""

from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from consumer.errors import ExitCode
from tests.support.archive import archiver_config, read_rows, wait_until_committed
from tests.support.daemon import DaemonProcess
from tests.support.kafka_tools import create_topic, produce


class NotifySocket:
    """A datagram socket standing in for systemd's notify socket; collects what the daemon sends."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self._sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []

    def collect_until(self, predicate: Callable[[list[str]], bool], timeout_s: float) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while not predicate([text for _, text in self.messages]):
            assert time.monotonic() < deadline, f"notify messages so far: {self.messages}"
            try:
                self.messages.append((time.monotonic(), self._sock.recv(4096).decode()))
            except TimeoutError:
                continue
        return [text for _, text in self.messages]

    def drain(self) -> None:
        """Take every datagram already queued (so that later ones are timed when they arrive)."""
        self._sock.setblocking(False)
        try:
            while True:
                self.messages.append((time.monotonic(), self._sock.recv(4096).decode()))
        except BlockingIOError:
            pass
        finally:
            self._sock.settimeout(0.2)

    def pings_since(self, since: float) -> int:
        return sum(1 for at, text in self.messages if at >= since and text == "WATCHDOG=1")

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _metric(body: str, line_start: str) -> float:
    for line in body.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{line_start} not in the scrape")


def test_systemd_notifications_follow_the_lifecycle(
    kafka_bootstrap: str,
    topic_factory: Callable[[int], str],
    group_id: str,
    tmp_path: Path,
    notify_socket: NotifySocket,
) -> None:
    """READY=1 after joining, WATCHDOG=1 while the loop turns, STOPPING=1 on SIGTERM."""
    topic = topic_factory(1)
    config = archiver_config(tmp_path / "a.toml", kafka_bootstrap, group_id, [topic])
    daemon = DaemonProcess(config, env={"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "1000000"})
    try:
        messages = notify_socket.collect_until(lambda texts: any(t.startswith("READY=1") for t in texts), 60)
        assert daemon.named("partitions_assigned"), "READY came before the group was joined"
        started = time.monotonic()
        notify_socket.collect_until(lambda texts: texts.count("WATCHDOG=1") >= 4, 10)
        assert notify_socket.pings_since(started) >= 3
    finally:
        code = daemon.stop()
    messages = notify_socket.collect_until(lambda texts: any(t.startswith("STOPPING=1") for t in texts), 10)
    assert code == ExitCode.OK
    assert messages.index(next(t for t in messages if t.startswith("READY=1"))) < len(messages) - 1


def test_metrics_match_what_was_archived(
    kafka_bootstrap: str, topic_factory: Callable[[int], str], group_id: str, tmp_path: Path
) -> None:
    """A scrape during the run reports the archived and quarantined counts the files hold."""
    topic = topic_factory(2)
    values = [orjson.dumps({"n": i}) if i % 50 else b"not json" for i in range(1000)]
    produce(kafka_bootstrap, topic, [(i % 2, None, value) for i, value in enumerate(values)])
    port = _free_port()
    config = archiver_config(
        tmp_path / "a.toml",
        kafka_bootstrap,
        group_id,
        [topic],
        metrics={"port": port},
        rotation={"file_max_idle_s": 1.0},
    )
    daemon = DaemonProcess(config)
    try:
        wait_until_committed(kafka_bootstrap, group_id, topic, 2, alive=lambda: daemon.process.poll() is None)
        status, body = _get(port, "/metrics")
        assert _get(port, "/healthz") == (200, "ok\n")
    finally:
        assert daemon.stop() == ExitCode.OK, daemon.describe()
    assert status == 200
    archived = len(read_rows(tmp_path / "archive", topic))
    assert archived == 980
    assert _metric(body, f'archiver_records_archived_total{{topic="{topic}"}}') == archived
    assert _metric(body, f'archiver_records_quarantined_total{{reason="invalid_json",topic="{topic}"}}') == 20
    assert _metric(body, f'archiver_records_consumed_total{{topic="{topic}"}}') == 1000
    assert _metric(body, 'archiver_files_committed_total{kind="data",reason="idle"}') == 2
    assert _metric(body, "archiver_offset_commit_seconds_count") >= 1


def test_a_stalled_loop_stops_the_watchdog_and_fails_healthz(
    kafka_bootstrap: str, tmp_path: Path, notify_socket: NotifySocket
) -> None:
    """A hung file read during recovery blocks the loop: watchdog pings stop, /healthz answers 503."""
    prefix = f"stall-{uuid.uuid4().hex[:8]}"
    create_topic(kafka_bootstrap, f"{prefix}-a", 1)
    root = tmp_path / "archive"
    hung = root / f"{prefix}-b" / "date=2026-01-01" / f"{prefix}-b+0+{0:020d}.parquet"
    hung.parent.mkdir(parents=True)
    os.mkfifo(hung)  # opening it for reading blocks until a writer appears: a hung filesystem
    port = _free_port()
    config = archiver_config(
        tmp_path / "a.toml",
        kafka_bootstrap,
        f"g-{prefix}",
        [],
        kafka={
            "topics": [],
            "topic_pattern": f"^{prefix}-.*",
            "properties": {"topic.metadata.refresh.interval.ms": 1000},
        },
        metrics={"port": port, "health_stall_s": 3.0},
    )
    daemon = DaemonProcess(config, env={"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "1000000"})
    try:
        notify_socket.collect_until(lambda texts: texts.count("WATCHDOG=1") >= 3, 60)
        assert _get(port, "/healthz")[0] == 200
        create_topic(kafka_bootstrap, f"{prefix}-b", 1)
        deadline = time.monotonic() + 60
        while _get(port, "/healthz")[0] != 503:
            assert time.monotonic() < deadline, "the loop never stalled"
            time.sleep(0.5)
        notify_socket.drain()
        stalled_at = time.monotonic()
        notify_socket.collect_until(lambda _texts: time.monotonic() > stalled_at + 3, 10)
        assert notify_socket.pings_since(stalled_at) == 0
        assert daemon.process.poll() is None  # alive, but stuck: systemd's watchdog would restart it
    finally:
        daemon.kill()
