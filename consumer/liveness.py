"""The loop's pulse: when it last completed an iteration.

Feeds the systemd watchdog, /healthz and the service status: READY=1 is sent once the member
has joined the group (its first assignment, even an empty one) and the loop is turning; STATUS=
follows the summary of each `stats` event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Notifier(Protocol):
    """Where liveness is announced (systemd's notify socket, in production)."""

    def ready(self, status: str) -> None: ...

    def status(self, status: str) -> None: ...

    def watchdog(self, now: float) -> None: ...


class Liveness:
    """Tracks loop iterations; tells systemd and the health check whether the loop is alive."""

    def __init__(
        self,
        notifier: Notifier,
        joined: Callable[[], bool],
        summary: Callable[[], str],
        started_at: float,
    ) -> None:
        self._notifier = notifier
        self._joined = joined
        self._summary = summary
        self.last_iteration_at = started_at
        self._ready = False
        self._status = ""

    def iteration_done(self, now: float) -> None:
        self.last_iteration_at = now
        if not self._ready and self._joined():
            self._ready = True
            self._status = self._summary()
            self._notifier.ready(self._status)
        elif self._ready and (status := self._summary()) != self._status:
            self._status = status
            self._notifier.status(status)
        self._notifier.watchdog(now)

    def stalled_for(self, now: float) -> float:
        """Seconds since the loop last completed an iteration."""
        return max(0.0, now - self.last_iteration_at)
