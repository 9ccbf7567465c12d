"""The archiver under measurement: its process and log, its RSS every second, the wait for its commits.

Every wait has a deadline: the run as a whole, a stall (nothing consumed or committed for
STALL_S), and the drain after SIGTERM.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil
from confluent_kafka import KafkaException

from bench.broker import REPO, CommitWatcher
from bench.soak_checks import Sample

SAMPLE_EVERY_S = 1.0
COMMIT_CHECK_EVERY_S = 0.2
STALL_S = 180.0  # no record consumed and no offset committed for this long: the run failed
STOP_TIMEOUT_S = 120.0


class SoakError(Exception):
    """The daemon exited, stalled, ran out of time, or ran with another allocator than requested."""


def run_deadline_s(records: int) -> float:
    """The longest a run may take: generous, at 2,000 records/s plus ten minutes."""
    return 600.0 + records / 2_000


class DaemonRun:
    """The archiver as a child process: its output kept in a log file, its latest `stats` at hand."""

    def __init__(self, config: Path, log: Path, env: Mapping[str, str]) -> None:
        command = [sys.executable, "-m", "consumer", "--log-format", "json", "run", "--config", str(config)]
        self.log = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
            env=dict(env),
        )  # fmt: skip
        self._measured = psutil.Process(self.process.pid)
        self.latest: dict[str, Any] = {}
        self._reader = threading.Thread(target=self._read, name="daemon-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._log.write(line)
            self._log.flush()  # a few lines a second; the log is read when the daemon fails
            if b'"stats"' in line:
                event = _parsed(line)
                if event.get("event") == "stats":
                    self.latest = event

    def sample(self, seconds: float) -> Sample | None:
        """RSS now (psutil) with the latest `stats` event's counters; None once the process is gone."""
        try:
            rss = self._measured.memory_info().rss
        except psutil.Error:
            return None
        stats = self.latest
        return Sample(
            seconds=round(seconds, 2),
            records_in=stats.get("records_in", 0),
            records_archived=stats.get("rows_archived", 0) + stats.get("quarantined", 0),
            rss_bytes=rss,
            arrow_bytes=stats.get("arrow_bytes", 0),
            arrow_peak_bytes=stats.get("arrow_peak_bytes", 0),
            buffered_bytes=stats.get("buffered_bytes", 0),
            daemon_rss_bytes=stats.get("rss_bytes", 0),
        )

    def high_water_bytes(self) -> int:
        """The kernel's peak RSS of the process (VmHWM), 0 where /proc does not say."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0
        line = next((line for line in status.splitlines() if line.startswith("VmHWM:")), "")
        return int(line.split()[1]) * 1024 if line else 0

    def stop(self) -> int | None:
        """SIGTERM, wait for the drain (deadline), SIGKILL past it; return the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            code: int | None = self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
            code = None
        self._reader.join(timeout=30)
        self._log.close()
        return code

    def last_lines(self, count: int = 3) -> str:
        lines = [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        return "\n".join(lines[-count:]) or "no output"


def _parsed(line: bytes) -> dict[str, Any]:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {}
    return event if isinstance(event, dict) else {}


@dataclass(slots=True)
class Progress:
    """How far the run is, and when it last moved: a run that neither consumes nor commits has stalled."""

    started: float
    total: int
    deadline: float
    committed: int = 0
    seen: tuple[int, int] = (-1, -1)
    moved_at: float = 0.0

    def note(self, records_in: int, committed: int | None, now: float) -> None:
        """Take the latest counts; an unknown commit count (None) keeps the last one."""
        self.committed = self.committed if committed is None else committed
        if (records_in, self.committed) != self.seen:
            self.seen, self.moved_at = (records_in, self.committed), now

    @property
    def done(self) -> bool:
        return self.committed == self.total

    def where(self, now: float) -> str:
        return f"after {now - self.started:,.0f} s, {self.committed:,} of {self.total:,} offsets committed"


def watch(
    daemon: DaemonRun, watcher: CommitWatcher, records: int, started: float
) -> tuple[list[Sample], float]:
    """Sample every second until every offset is committed; return the samples and the seconds it took."""
    samples: list[Sample] = []
    progress = Progress(started, watcher.total(), started + run_deadline_s(records), moved_at=started)
    next_sample = started + SAMPLE_EVERY_S
    while True:
        now = time.monotonic()
        if now >= next_sample:
            samples += [sample] if (sample := daemon.sample(now - started)) else []
            next_sample += SAMPLE_EVERY_S
        progress.note(daemon.latest.get("records_in", 0), _committed(watcher), now)
        if progress.done:
            return samples, now - started
        _check_running(daemon, progress, now)
        time.sleep(COMMIT_CHECK_EVERY_S)


def _committed(watcher: CommitWatcher) -> int | None:
    """The group's committed offsets, or None while the broker cannot say (a coordinator moving)."""
    try:
        return watcher.committed()
    except KafkaException:
        return None


def _check_running(daemon: DaemonRun, progress: Progress, now: float) -> None:
    """Raise SoakError if the daemon exited, the run is past its deadline, or nothing moves any more."""
    if daemon.process.poll() is not None:
        code = daemon.process.returncode
        raise SoakError(f"the daemon exited with {code} {progress.where(now)}: {daemon.last_lines()}")
    if now > progress.deadline:
        raise SoakError(f"not done {progress.where(now)}")
    if now - progress.moved_at > STALL_S:
        raise SoakError(f"nothing consumed or committed for {STALL_S:.0f} s, {progress.where(now)}")
