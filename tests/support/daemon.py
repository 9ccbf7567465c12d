"""Run the real `kafka-parquet-archiver` command in a child process and follow its JSON log events."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import tomli_w

Event = dict[str, Any]


def write_config(path: Path, settings: Mapping[str, Mapping[str, Any]]) -> Path:
    path.write_bytes(tomli_w.dumps(dict(settings)).encode())
    return path


class DaemonProcess:
    """The archiver as a child process; its stdout JSON events are collected as they arrive."""

    def __init__(
        self,
        config: Path,
        *extra_args: str,
        env: Mapping[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        command = [
            sys.executable,
            "-m",
            "consumer",
            "--log-format",
            "json",
            *extra_args,
            "run",
            "--config",
            str(config),
        ]
        self.events: list[Event] = []
        self.stderr_lines: list[str] = []
        self._queue: queue.Queue[Event] = queue.Queue()
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            # A hang is reported with every thread's stack (see wait()).
            env={**os.environ, "PYTHONFAULTHANDLER": "1", **(env or {})},
            preexec_fn=preexec_fn,  # noqa: PLW1509 - only resource limits, set before exec
        )
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                event = {"event": "unparsed_output", "line": line.decode(errors="replace")}
            self._queue.put(event)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line.decode(errors="replace"))

    def _drain(self) -> None:
        while True:
            try:
                self.events.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def wait_for(self, predicate: Callable[[Event], bool], timeout_s: float = 60.0) -> Event:
        """Return the first event (already seen or new) matching predicate, polling until the deadline."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        while True:
            self._drain()
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
            if self.process.poll() is not None:
                self._drain()
                matches = [event for event in self.events[seen:] if predicate(event)]
                if matches:
                    return matches[0]
                raise AssertionError(f"daemon exited with {self.process.returncode}: {self.describe()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching event within {timeout_s}s: {self.describe()}")
            time.sleep(0.05)

    def wait_for_event(self, name: str, timeout_s: float = 60.0, **fields: Any) -> Event:
        return self.wait_for(
            lambda event: event.get("event") == name and all(event.get(k) == v for k, v in fields.items()),
            timeout_s,
        )

    def event_within(self, name: str, timeout_s: float) -> Event | None:
        """The first event with this name if one arrives in time, else None (the process still running)."""
        try:
            return self.wait_for_event(name, timeout_s)
        except AssertionError:
            if self.process.poll() is not None:
                raise
            return None

    def named(self, name: str) -> list[Event]:
        self._drain()
        return [event for event in self.events if event.get("event") == name]

    def wait(self, timeout_s: float = 60.0) -> int:
        """Wait for the process to exit and for its output to be read; return the exit code.

        A process still running at the deadline is aborted (SIGABRT: its threads' stacks go to
        stderr) and the test fails with them.
        """
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)
            self.process.wait(timeout=30)
            for reader in self._readers:
                reader.join(timeout=10)
            raise AssertionError(
                f"the daemon did not exit within {timeout_s:g}s: {self.describe(stderr_lines=200)}"
            ) from None
        for reader in self._readers:
            reader.join(timeout=10)
        self._drain()
        return code

    def stop(self, signum: int = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        """Send a signal and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.wait(timeout_s)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.wait(30)

    def describe(self, stderr_lines: int = 15) -> str:
        self._drain()
        tail = [orjson.dumps(event).decode() for event in self.events[-15:]]
        state = f"exit code {self.process.returncode}" if self.process.poll() is not None else "running"
        return "\n".join(
            [
                f"daemon {state}, {len(self.events)} events; last events:",
                *tail,
                "stderr:",
                *self.stderr_lines[-stderr_lines:],
            ]
        )
