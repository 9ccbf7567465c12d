"""Liveness: READY once joined, STATUS when the summary changes, watchdog from iterations only."""

from __future__ import annotations

from consumer.liveness import Liveness


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def ready(self, status: str) -> None:
        self.sent.append(f"ready:{status}")

    def status(self, status: str) -> None:
        self.sent.append(f"status:{status}")

    def watchdog(self, now: float) -> None:
        self.sent.append(f"watchdog:{now:g}")


class TestLiveness:
    def test_ready_only_after_joining(self) -> None:
        """Iterations before the first assignment ping the watchdog but do not announce READY."""
        notifier = RecordingNotifier()
        joined = [False]
        liveness = Liveness(notifier, lambda: joined[0], lambda: "idle", started_at=0.0)
        liveness.iteration_done(1.0)
        joined[0] = True
        liveness.iteration_done(2.0)
        liveness.iteration_done(3.0)
        assert notifier.sent == ["watchdog:1", "ready:idle", "watchdog:2", "watchdog:3"]

    def test_status_follows_the_summary(self) -> None:
        """A changed summary is published once as STATUS."""
        notifier = RecordingNotifier()
        summary = ["a"]
        liveness = Liveness(notifier, lambda: True, lambda: summary[0], started_at=0.0)
        liveness.iteration_done(1.0)
        summary[0] = "b"
        liveness.iteration_done(2.0)
        liveness.iteration_done(3.0)
        assert [message for message in notifier.sent if not message.startswith("watchdog")] == [
            "ready:a",
            "status:b",
        ]

    def test_stalled_for_counts_from_the_last_iteration(self) -> None:
        """stalled_for is the time since the last completed iteration (or since start)."""
        liveness = Liveness(RecordingNotifier(), lambda: False, lambda: "", started_at=10.0)
        assert liveness.stalled_for(12.5) == 2.5
        liveness.iteration_done(20.0)
        assert liveness.stalled_for(21.0) == 1.0
