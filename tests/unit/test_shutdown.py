"""ShutdownSignal: the first signal asks to stop, a second one or the deadline aborts the drain."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from consumer.errors import ShutdownAbortedError
from consumer.shutdown import ShutdownSignal


@pytest.fixture(autouse=True)
def restore_handlers() -> Iterator[None]:
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)}
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def _stuck_drain(seconds: float) -> None:
    """A drain stuck in Python code for a while."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)


class TestShutdownSignal:
    def test_first_signal_requests_a_drain(self) -> None:
        """SIGTERM sets `requested` and raises nothing."""
        shutdown = ShutdownSignal(deadline_s=30.0)
        shutdown.install()
        signal.raise_signal(signal.SIGTERM)
        assert shutdown.requested
        shutdown.disarm()

    def test_second_signal_aborts(self) -> None:
        """A second signal during the drain raises ShutdownAbortedError."""
        shutdown = ShutdownSignal(deadline_s=30.0)
        shutdown.install()
        signal.raise_signal(signal.SIGINT)
        with pytest.raises(ShutdownAbortedError, match="second signal"):
            signal.raise_signal(signal.SIGTERM)
        shutdown.disarm()

    def test_deadline_aborts_a_drain_that_takes_too_long(self) -> None:
        """When the drain outlives the deadline, ShutdownAbortedError interrupts it."""
        shutdown = ShutdownSignal(deadline_s=0.2)
        shutdown.install()
        signal.raise_signal(signal.SIGTERM)
        with pytest.raises(ShutdownAbortedError, match=r"did not finish within 0\.2s"):
            _stuck_drain(5.0)
        shutdown.disarm()

    def test_disarm_cancels_the_deadline(self) -> None:
        """A drain that finishes in time disarms the deadline: no abort follows."""
        shutdown = ShutdownSignal(deadline_s=0.1)
        shutdown.install()
        signal.raise_signal(signal.SIGTERM)
        shutdown.disarm()
        time.sleep(0.3)  # past the deadline: nothing must fire
        assert shutdown.requested
