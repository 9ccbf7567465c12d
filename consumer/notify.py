"""systemd's notify protocol: READY=1, WATCHDOG=1, STATUS=..., STOPPING=1 over $NOTIFY_SOCKET.

A no-op when the daemon does not run under systemd (no NOTIFY_SOCKET). Watchdog pings are sent
only when the poll loop reports an iteration, so a stalled loop stops pinging and systemd
restarts the service.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog


class SystemdNotifier:
    """Sends sd_notify datagrams; knows the watchdog interval systemd asked for."""

    def __init__(self, socket_path: str | None, watchdog_interval_s: float | None) -> None:
        self._address = "\0" + socket_path[1:] if socket_path and socket_path.startswith("@") else socket_path
        self.watchdog_interval_s = watchdog_interval_s
        self._last_ping: float | None = None
        self._log = structlog.get_logger(component="notify")

    @classmethod
    def from_environment(cls, environment: Mapping[str, str]) -> SystemdNotifier:
        """Read NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID as systemd sets them."""
        watchdog_usec = environment.get("WATCHDOG_USEC")
        watchdog_pid = environment.get("WATCHDOG_PID")
        for_us = watchdog_pid is None or watchdog_pid == str(os.getpid())
        interval = int(watchdog_usec) / 1_000_000 if watchdog_usec and for_us else None
        return cls(environment.get("NOTIFY_SOCKET"), interval)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self, status: str) -> None:
        self._send(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        self._send(f"STATUS={status}")

    def stopping(self) -> None:
        self._send("STOPPING=1\nSTATUS=finishing files and committing offsets")

    def watchdog(self, now: float) -> None:
        """Ping the watchdog, at most twice per interval."""
        if self.watchdog_interval_s is None:
            return
        if self._last_ping is None or now - self._last_ping >= self.watchdog_interval_s / 2:
            self._send("WATCHDOG=1")
            self._last_ping = now

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode(), self._address)
        except OSError as exc:
            self._log.warning("notify_failed", error=str(exc))
