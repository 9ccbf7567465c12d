"""Composition root and lifecycle: build the parts, join the group, loop, drain on shutdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

from consumer.config import Settings
from consumer.errors import ExitCode, FatalError, ShutdownAbortedError
from consumer.kafka import KafkaSource
from consumer.records import TopicPartition
from consumer.shutdown import ShutdownSignal


class _AssignmentLog:
    """Logs partition ownership changes; starts every partition at its committed offset."""

    def __init__(self) -> None:
        self._log = structlog.get_logger(component="assignment")

    def assigned(self, committed: Mapping[TopicPartition, int | None]) -> Mapping[TopicPartition, int | None]:
        self._log.info("partitions_assigned", partitions=sorted(map(str, committed)))
        return committed

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        self._log.info("partitions_revoked", partitions=sorted(map(str, partitions)))

    def lost(self, partitions: Sequence[TopicPartition]) -> None:
        self._log.warning("partitions_lost", partitions=sorted(map(str, partitions)))


def run(settings: Settings) -> int:
    """Run until a signal; return the process exit code."""
    log = structlog.get_logger(component="daemon")
    shutdown = ShutdownSignal(settings.shutdown.timeout_s)
    shutdown.install()
    source = KafkaSource(
        settings.kafka, _AssignmentLog(), settings.stats.interval_s, on_lag=lambda _lag: None
    )
    try:
        source.wait_for_cluster()
        source.subscribe()
        log.info("daemon_started", bootstrap_servers=settings.kafka.bootstrap_servers)
        while not shutdown.requested:
            source.poll(settings.kafka.poll_max_messages, settings.kafka.poll_timeout_s)
        source.close()
        shutdown.disarm()
    except FatalError as exc:
        # One clear line: these errors are anticipated and their message says what to fix.
        log.error("fatal_error", error=str(exc), kind=type(exc).__name__)  # noqa: TRY400
        return ExitCode.FATAL
    except ShutdownAbortedError:
        return ExitCode.SHUTDOWN_ABORTED
    log.info("daemon_stopped")
    return ExitCode.OK
