"""How a system is measured: its process, its RSS every 50 ms, and for daemons its group's commits.

The archiver and Quix are measured alike: from process start until their consumer group has
committed every offset of the topic (read from the broker every 20 ms), RSS sampled every 50 ms,
CPU seconds read from the process just before it is stopped. A system that fails is a Result with
its reason, not a crashed run.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.broker import CommitWatcher

DEADLINE_S = 1800
# How often a daemon's committed offsets are read: its end-to-end time includes up to this much
# after its last commit (half of it on average), for (c) and (d) alike.
WATCH_INTERVAL_S = 0.02


@dataclass
class Result:
    system: str
    workload: str
    records: int
    input_bytes: int
    elapsed_s: float
    cpu_s: float
    peak_rss_bytes: int
    output_bytes: int
    files: int
    rss_series: list[tuple[float, int]] = field(default_factory=list)
    error: str = ""
    round: int = 1  # which of the run's repeats (bench.run --repeat) measured it
    flowing_records_per_s: float | None = None  # (c) only: its rate while records flowed (progress.py)

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def records_per_s(self) -> float:
        return self.records / self.elapsed_s if self.ok and self.elapsed_s > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.input_bytes / self.elapsed_s / 1e6 if self.ok and self.elapsed_s > 0 else 0.0


@dataclass(frozen=True)
class Job:
    """One workload's topic, produced once and read by every system."""

    bootstrap: str
    workload: str
    topic: str
    records: int
    input_bytes: int
    work: Path


@dataclass(frozen=True)
class Daemon:
    """A long-running consumer-group member, measured until its group has committed everything."""

    system: str
    command: list[str]
    cwd: Path
    group: str
    output: Path
    log: Path
    stall_s: float | None = None
    rss_limit_bytes: int | None = None


class MeasuredSystemError(Exception):
    """The measured system exited, stalled, ran out of time or over its memory limit."""


def failed(system: str, job: Job, error: str, series: list[tuple[float, int]] | None = None) -> Result:
    peak = max((rss for _, rss in series or []), default=0)
    return Result(
        system, job.workload, job.records, job.input_bytes, 0.0, 0.0, peak, 0, 0, series or [], error
    )


class RssSampler:
    """Samples a process's RSS every 50 ms in a thread; keeps the peak and the series.

    With a limit, kills the process once its RSS exceeds it, and says so in `exceeded`.
    """

    def __init__(self, pid: int, limit_bytes: int | None = None) -> None:
        self._process = psutil.Process(pid)
        self._limit = limit_bytes
        self._started = time.monotonic()
        self.peak = 0
        self.exceeded = False
        self.series: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self._process.memory_info().rss
                if self._limit is not None and rss > self._limit:
                    self.exceeded = True
                    self._process.kill()
            except psutil.Error:
                return
            self.peak = max(self.peak, rss)
            self.series.append((round(time.monotonic() - self._started, 2), rss))
            self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_daemon(daemon: Daemon, job: Job) -> Result:
    with CommitWatcher(job.bootstrap, daemon.group, job.topic) as watcher, daemon.log.open("wb") as log:
        started = time.monotonic()
        child = subprocess.Popen(daemon.command, stdout=log, stderr=subprocess.STDOUT, cwd=daemon.cwd)
        sampler = RssSampler(child.pid, daemon.rss_limit_bytes)
        try:
            elapsed = _wait_until_committed(daemon, child, watcher, sampler, started)
            cpu_s = _cpu_seconds(child.pid)
        except MeasuredSystemError as failure:
            return failed(daemon.system, job, str(failure), sampler.series)
        finally:
            sampler.stop()
            _stop(child)
    files = list(daemon.output.glob("**/*.parquet"))
    size = sum(path.stat().st_size for path in files)
    return Result(
        daemon.system, job.workload, job.records, job.input_bytes, elapsed, cpu_s, sampler.peak, size,
        len(files), sampler.series,
    )  # fmt: skip


def _wait_until_committed(
    daemon: Daemon,
    child: subprocess.Popen[bytes],
    watcher: CommitWatcher,
    sampler: RssSampler,
    started: float,
) -> float:
    """Seconds from `started` until every offset is committed; raises MeasuredSystemError otherwise."""
    total, progress, progress_at = watcher.total(), -1, started
    while True:
        committed, now = watcher.committed(), time.monotonic()
        if committed == total:
            return now - started
        if committed != progress:
            progress, progress_at = committed, now
        where = f"after {now - started:.0f} s, {committed:,} of {total:,} offsets committed"
        _check_running(daemon, child, sampler, where)
        if now - started > DEADLINE_S:
            raise MeasuredSystemError(f"not done {where}")
        if daemon.stall_s is not None and now - progress_at > daemon.stall_s:
            raise MeasuredSystemError(f"no commit for {daemon.stall_s:.0f} s, {where}")
        time.sleep(WATCH_INTERVAL_S)


def _check_running(daemon: Daemon, child: subprocess.Popen[bytes], sampler: RssSampler, where: str) -> None:
    if sampler.exceeded:
        limit_gib = (daemon.rss_limit_bytes or 0) / 2**30
        raise MeasuredSystemError(f"killed by the benchmark at RSS > {limit_gib:.0f} GiB {where}")
    if child.poll() is not None:
        raise MeasuredSystemError(f"exit code {child.returncode} {where}: {_last_error(daemon.log)}")


def _last_error(log: Path) -> str:
    """The last line of the log that names an error (a traceback's last line), else its last line."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "Exception" in line]
    return (errors or lines or ["no output"])[-1][:240]


def _cpu_seconds(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error as error:
        raise MeasuredSystemError(f"process gone before its CPU time was read: {error}") from error
    return times.user + times.system


def _stop(child: subprocess.Popen[bytes]) -> None:
    child.terminate()
    try:
        child.wait(timeout=120)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
