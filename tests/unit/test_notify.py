"""SystemdNotifier: sd_notify datagrams, watchdog pacing, and silence outside systemd."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumer.notify import SystemdNotifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.5)
    yield path, sock
    sock.close()


def _received(sock: socket.socket) -> list[str]:
    messages = []
    sock.setblocking(False)
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


class TestSystemdNotifier:
    def test_ready_status_and_stopping_reach_the_socket(self, listener: tuple[str, socket.socket]) -> None:
        """READY=1 with a status, STATUS= alone, and STOPPING=1 arrive as datagrams."""
        path, sock = listener
        notifier = SystemdNotifier(path, None)
        notifier.ready("2 partitions")
        notifier.status("3 partitions")
        notifier.stopping()
        assert _received(sock) == [
            "READY=1\nSTATUS=2 partitions",
            "STATUS=3 partitions",
            "STOPPING=1\nSTATUS=finishing files and committing offsets",
        ]

    def test_watchdog_pings_at_most_twice_per_interval(self, listener: tuple[str, socket.socket]) -> None:
        """Pings follow the loop's calls but never more often than half the watchdog interval."""
        path, sock = listener
        notifier = SystemdNotifier(path, 10.0)
        for now in (0.0, 1.0, 4.9, 5.0, 6.0, 10.0):
            notifier.watchdog(now)
        assert _received(sock) == ["WATCHDOG=1"] * 3

    def test_environment_sets_socket_and_interval(self, listener: tuple[str, socket.socket]) -> None:
        """NOTIFY_SOCKET and WATCHDOG_USEC (for this pid) configure the notifier."""
        path, _ = listener
        notifier = SystemdNotifier.from_environment(
            {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}
        )
        assert notifier.enabled
        assert notifier.watchdog_interval_s == 4.0

    def test_watchdog_meant_for_another_process_is_ignored(self) -> None:
        """A WATCHDOG_PID that is not this process turns the watchdog off."""
        notifier = SystemdNotifier.from_environment(
            {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}
        )
        assert notifier.watchdog_interval_s is None

    def test_without_systemd_nothing_is_sent(self) -> None:
        """With no NOTIFY_SOCKET the notifier is disabled and its calls are harmless."""
        notifier = SystemdNotifier.from_environment({})
        assert not notifier.enabled
        notifier.ready("x")
        notifier.watchdog(0.0)
