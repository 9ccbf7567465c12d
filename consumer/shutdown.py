"""SIGTERM/SIGINT: the first signal asks for a graceful drain; a second one, or the deadline, aborts it."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

import structlog

from consumer.errors import ExitCode, ShutdownAbortedError

# Time given to the abort path to unwind before the process is ended outright.
HARD_EXIT_GRACE_S = 5.0


class ShutdownSignal:
    """Installs the signal handlers and tells the loop when to stop.

    The drain after the first signal must finish within the deadline; otherwise SIGALRM raises
    ShutdownAbortedError in the main thread, and if even that cannot unwind (a system call that never
    returns), a watchdog thread ends the process. Nothing is committed on either abort path.
    """

    def __init__(self, deadline_s: float) -> None:
        self._deadline_s = deadline_s
        self._requested = False
        self._watchdog: threading.Timer | None = None
        self._log = structlog.get_logger(component="shutdown")

    @property
    def requested(self) -> bool:
        return self._requested

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        signal.signal(signal.SIGALRM, self._on_deadline)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._requested:
            self._log.warning("shutdown_aborted", signal=name, reason="second signal")
            raise ShutdownAbortedError(f"second signal ({name})")
        self._requested = True
        self._log.info("shutdown_requested", signal=name, deadline_s=self._deadline_s)
        signal.setitimer(signal.ITIMER_REAL, self._deadline_s)
        self._watchdog = threading.Timer(self._deadline_s + HARD_EXIT_GRACE_S, self._hard_exit)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _on_deadline(self, _signum: int, _frame: FrameType | None) -> None:
        self._log.error("shutdown_aborted", reason="deadline exceeded", deadline_s=self._deadline_s)
        raise ShutdownAbortedError(f"the drain did not finish within {self._deadline_s:g}s")

    def _hard_exit(self) -> None:
        self._log.error("shutdown_forced", reason="abort did not unwind in time")
        os._exit(ExitCode.SHUTDOWN_ABORTED)

    def disarm(self) -> None:
        """The drain finished: cancel the deadline."""
        signal.setitimer(signal.ITIMER_REAL, 0)
        if self._watchdog is not None:
            self._watchdog.cancel()
