"""SIGTERM/SIGINT: the first signal asks for a graceful drain; a second one, or the deadline, aborts it."""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

import structlog

from consumer.errors import ExitCode, ShutdownAbortedError

# Time given to the abort path to unwind before the process is ended outright.
HARD_EXIT_GRACE_S = 5.0
# How long the watchdog waits for its report (every thread's stack, one log line) before it ends the
# process anyway: a stdout or stderr that nobody reads, or a write stuck on it, must not hold the exit.
WATCHDOG_REPORT_S = 1.0
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


class ShutdownSignal:
    """Installs the signal handlers and tells the loop when to stop.

    The drain after the first signal must finish within the deadline; otherwise SIGALRM raises
    ShutdownAbortedError in the main thread. A watchdog thread bounds the whole exit: deadline plus
    grace after the signal, it ends the process outright. It starts from the signal's arrival, not
    from the Python handler, which runs only once the main thread leaves the client call it is in;
    and it stays after the drain, so that closing the clients cannot hold the exit either, nor can
    its own report, should stdout or stderr block. Ended before the drain finished, the process
    exits SHUTDOWN_ABORTED and nothing more is committed; after it, everything is committed and the
    exit code is OK.
    """

    def __init__(
        self,
        deadline_s: float,
        grace_s: float = HARD_EXIT_GRACE_S,
        hard_exit: Callable[[int], object] = os._exit,
    ) -> None:
        self._deadline_s = deadline_s
        self._grace_s = grace_s
        self._hard_exit = hard_exit
        self._requested = False
        self._drained = False
        self._watchdog: threading.Timer | None = None
        self._watchdog_lock = threading.Lock()
        self._uninstalled = False
        self._saved_handlers: dict[int, signal.Handlers | Callable[..., object] | int | None] = {}
        self._wakeup_fd: int | None = None  # the pipe's write end, while installed
        self._previous_wakeup_fd = -1
        self._log = structlog.get_logger(component="shutdown")

    @property
    def requested(self) -> bool:
        return self._requested

    def install(self) -> None:
        """Handlers for SIGTERM, SIGINT and SIGALRM, and the thread that arms the watchdog."""
        for signum in (*STOP_SIGNALS, signal.SIGALRM):
            self._saved_handlers[signum] = signal.getsignal(signum)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        signal.signal(signal.SIGALRM, self._on_deadline)
        # Python's own C-level handler writes each signal's number here as it arrives.
        read_fd, write_fd = os.pipe()
        self._wakeup_fd = write_fd
        os.set_blocking(write_fd, False)
        self._previous_wakeup_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, args=(read_fd,), name="shutdown-watch", daemon=True).start()

    def uninstall(self) -> None:
        """Undo install(): the previous handlers, no deadline, no watchdog, the watch thread ended.

        The daemon never calls it (the watchdog must outlast the drain); a process that embeds the
        archiver, or a test, does.
        """
        signal.setitimer(signal.ITIMER_REAL, 0)
        with self._watchdog_lock:
            if self._watchdog is not None:
                self._watchdog.cancel()
            self._watchdog = None
            self._uninstalled = True
        if self._wakeup_fd is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
            os.close(self._wakeup_fd)  # the watch thread reads the end of the pipe and returns
            self._wakeup_fd = None
        for signum, handler in self._saved_handlers.items():
            signal.signal(signum, handler)
        self._saved_handlers.clear()

    def _watch(self, read_fd: int) -> None:
        try:
            while received := os.read(read_fd, 64):
                if any(signum in STOP_SIGNALS for signum in received):
                    self._arm_watchdog()
        finally:
            os.close(read_fd)

    def _arm_watchdog(self) -> None:
        with self._watchdog_lock:
            if self._watchdog is None and not self._uninstalled:
                self._watchdog = threading.Timer(self._deadline_s + self._grace_s, self._on_watchdog)
                self._watchdog.daemon = True
                self._watchdog.start()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._requested:
            self._log.warning("shutdown_aborted", signal=name, reason="second signal")
            raise ShutdownAbortedError(f"second signal ({name})")
        self._requested = True
        self._log.info("shutdown_requested", signal=name, deadline_s=self._deadline_s)
        signal.setitimer(signal.ITIMER_REAL, self._deadline_s)

    def _on_deadline(self, _signum: int, _frame: FrameType | None) -> None:
        self._log.error("shutdown_aborted", reason="deadline exceeded", deadline_s=self._deadline_s)
        raise ShutdownAbortedError(f"the drain did not finish within {self._deadline_s:g}s")

    def _on_watchdog(self) -> None:
        drained = self._drained
        report = threading.Thread(
            target=self._report_forced_exit, args=(drained,), name="shutdown-report", daemon=True
        )
        report.start()
        report.join(WATCHDOG_REPORT_S)
        self._hard_exit(ExitCode.OK if drained else ExitCode.SHUTDOWN_ABORTED)

    def _report_forced_exit(self, drained: bool) -> None:
        faulthandler.dump_traceback(sys.stderr, all_threads=True)  # where the exit was held
        if drained:
            self._log.warning("shutdown_forced", reason="closing the clients did not finish in time")
        else:
            self._log.error("shutdown_forced", reason="the drain did not end in time")

    def drained(self) -> None:
        """The drain finished and committed: the deadline aborts nothing more (the watchdog stays)."""
        signal.setitimer(signal.ITIMER_REAL, 0)
        self._drained = True
