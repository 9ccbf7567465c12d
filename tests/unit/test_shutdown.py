"""ShutdownSignal: the first signal asks to stop, a second one or the deadline aborts the drain, and a
watchdog bounds the whole exit."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Literal

import pytest

from consumer.errors import ExitCode, ShutdownAbortedError
from consumer.shutdown import HARD_EXIT_GRACE_S, ShutdownSignal

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)
Installer = Callable[..., ShutdownSignal]


class HardExits:
    """Records the watchdog's exit codes instead of ending the test process."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


@pytest.fixture
def hard_exits() -> HardExits:
    return HardExits()


@pytest.fixture
def install(hard_exits: HardExits) -> Iterator[Installer]:
    """Installs ShutdownSignals that exit through hard_exits; uninstalls them after the test."""
    installed: list[ShutdownSignal] = []

    def make(deadline_s: float, grace_s: float = HARD_EXIT_GRACE_S) -> ShutdownSignal:
        shutdown = ShutdownSignal(deadline_s, grace_s, hard_exit=hard_exits)
        shutdown.install()
        installed.append(shutdown)
        return shutdown

    yield make
    for shutdown in reversed(installed):
        shutdown.uninstall()


def _stuck_drain(seconds: float) -> None:
    """A drain stuck in Python code for a while."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)


class TestShutdownSignal:
    def test_first_signal_requests_a_drain(self, install: Installer) -> None:
        """SIGTERM sets `requested` and raises nothing."""
        shutdown = install(deadline_s=30.0)
        signal.raise_signal(signal.SIGTERM)
        assert shutdown.requested
        shutdown.drained()

    def test_second_signal_aborts(self, install: Installer) -> None:
        """A second signal during the drain raises ShutdownAbortedError."""
        shutdown = install(deadline_s=30.0)
        signal.raise_signal(signal.SIGINT)
        with pytest.raises(ShutdownAbortedError, match="second signal"):
            signal.raise_signal(signal.SIGTERM)
        shutdown.drained()

    def test_deadline_aborts_a_drain_that_takes_too_long(self, install: Installer) -> None:
        """When the drain outlives the deadline, ShutdownAbortedError interrupts it."""
        shutdown = install(deadline_s=0.2)
        signal.raise_signal(signal.SIGTERM)
        with pytest.raises(ShutdownAbortedError, match=r"did not finish within 0\.2s"):
            _stuck_drain(5.0)
        shutdown.drained()

    def test_a_finished_drain_cancels_the_deadline(self, install: Installer, hard_exits: HardExits) -> None:
        """A drain that finishes in time: no abort follows."""
        shutdown = install(deadline_s=0.1, grace_s=30.0)
        signal.raise_signal(signal.SIGTERM)
        shutdown.drained()
        time.sleep(0.3)  # past the deadline: nothing must fire
        assert shutdown.requested
        assert hard_exits.codes == []

    def test_the_watchdog_ends_an_exit_held_after_the_drain_with_code_ok(
        self, install: Installer, hard_exits: HardExits
    ) -> None:
        """Past deadline plus grace, an exit still held up (closing the clients) is ended; the drain
        had committed everything, so the code is OK."""
        shutdown = install(deadline_s=0.1, grace_s=0.1)
        signal.raise_signal(signal.SIGTERM)
        shutdown.drained()
        assert hard_exits.called.wait(5.0)
        assert hard_exits.codes == [ExitCode.OK]

    def test_the_watchdog_ends_a_drain_that_cannot_unwind_with_code_3(
        self, install: Installer, hard_exits: HardExits
    ) -> None:
        """Past deadline plus grace, a drain that has not finished is ended: exit code 3."""
        install(deadline_s=0.1, grace_s=0.1)
        signal.raise_signal(signal.SIGTERM)
        with pytest.raises(ShutdownAbortedError):
            _stuck_drain(5.0)
        assert hard_exits.called.wait(5.0)
        assert hard_exits.codes == [ExitCode.SHUTDOWN_ABORTED]


def test_uninstall_restores_the_handlers_and_stops_the_watchdog(hard_exits: HardExits) -> None:
    """After uninstall(), the previous handlers and wakeup fd are back, the watch thread has ended,
    and a watchdog armed by an earlier signal never fires."""
    before = {signum: signal.getsignal(signum) for signum in HANDLED}
    wakeup_fd_before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup_fd_before)
    shutdown = ShutdownSignal(deadline_s=0.1, grace_s=0.1, hard_exit=hard_exits)
    shutdown.install()
    signal.raise_signal(signal.SIGTERM)
    shutdown.drained()
    shutdown.uninstall()
    assert {signum: signal.getsignal(signum) for signum in HANDLED} == before
    assert signal.set_wakeup_fd(wakeup_fd_before) == wakeup_fd_before
    deadline = time.monotonic() + 5.0
    while any(thread.name == "shutdown-watch" for thread in threading.enumerate()):
        assert time.monotonic() < deadline, "the watch thread is still running"
        time.sleep(0.01)
    assert not hard_exits.called.wait(0.5)  # past deadline plus grace


def test_the_deadline_holds_while_the_main_thread_never_returns_to_python() -> None:
    """The main thread stays inside a C call through the signal (as in a blocking client call): its
    Python handler never runs, yet the process ends at deadline plus grace, exit code 3."""
    script = textwrap.dedent(
        """
        import ctypes, signal, sys
        from consumer.shutdown import HARD_EXIT_GRACE_S, ShutdownSignal

        ShutdownSignal(deadline_s=0.2, grace_s=0.2).install()
        # The signals go to another thread; this one sleeps in C for 20 s. SIGALRM is blocked too,
        # as in a client call that resumes after signals: should the handler still run before the
        # sleep begins and set the deadline's alarm, the alarm cannot cut the sleep short either.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGALRM})
        print("ready", flush=True)
        ctypes.CDLL(None).sleep(20)
        sys.exit(0)
        """
    )
    _assert_sigterm_ends_it_aborted(script, ready_on="stdout")


def test_the_watchdog_ends_the_process_while_its_log_cannot_be_written() -> None:
    """Nobody reads stdout and a thread is stuck writing to it (a log line the pipe has no room for),
    so the watchdog's own report cannot be written either. The process still ends at deadline plus
    grace plus the report's wait, exit code 3."""
    script = textwrap.dedent(
        """
        import ctypes, signal, sys, threading, time
        from consumer.log import configure
        from consumer.shutdown import ShutdownSignal

        configure("info", "json", sys.stdout)
        ShutdownSignal(deadline_s=0.2, grace_s=0.2).install()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGALRM})

        def fill():
            while True:
                sys.stdout.buffer.write(b"x" * 4096)
                sys.stdout.buffer.flush()

        threading.Thread(target=fill, daemon=True).start()
        time.sleep(0.5)  # the pipe is full and the writer stuck
        print("ready", file=sys.stderr, flush=True)
        ctypes.CDLL(None).sleep(20)
        sys.exit(0)
        """
    )
    _assert_sigterm_ends_it_aborted(script, ready_on="stderr")


def _assert_sigterm_ends_it_aborted(script: str, ready_on: Literal["stdout", "stderr"]) -> None:
    """Run the script in a child until it prints "ready" on `ready_on`, send SIGTERM, and expect
    the child to end within 10 s with exit code 3. Neither pipe is read after "ready"."""
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        ready = child.stdout if ready_on == "stdout" else child.stderr
        assert ready is not None
        assert ready.readline().strip() == "ready"
        started = time.monotonic()
        child.send_signal(signal.SIGTERM)
        code = child.wait(timeout=15)
        assert code == ExitCode.SHUTDOWN_ABORTED
        assert time.monotonic() - started < 10
    finally:
        child.kill()
        child.wait()
