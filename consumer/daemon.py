"""Composition root and lifecycle: build the parts, join the group, loop, drain on shutdown.

Exit paths: a signal drains (finish every open file, commit, leave the group) and exits 0; a
fatal error or an aborted drain discards in-progress files, commits nothing more and exits
non-zero. Offsets are never committed for data that is not in a finished file.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import structlog

from consumer import __version__
from consumer.clock import SystemClock
from consumer.config import Settings
from consumer.errors import ExitCode, FatalError, ShutdownAbortedError
from consumer.kafka import KafkaSource
from consumer.kafka.dead_letters import KafkaDeadLetters
from consumer.liveness import Liveness
from consumer.memory_pool import check_allocator
from consumer.notify import SystemdNotifier
from consumer.pipeline import Pipeline
from consumer.records import TopicPartition

if TYPE_CHECKING:
    from consumer.metrics import MetricsEndpoint
from consumer.rotation import RotationReason
from consumer.shutdown import ShutdownSignal

FINAL_COMMIT_ATTEMPTS = 3


class Daemon:
    """The pipeline fed by the Kafka consumer, with a lifecycle and its outside signals."""

    def __init__(self, settings: Settings, environment: Mapping[str, str]) -> None:
        self.settings = settings
        self.clock = SystemClock()
        self.source = KafkaSource(
            settings.kafka,
            settings.stats.interval_s,
            self._on_lag,
            read_headers="_headers" in settings.output.metadata_columns,
        )
        self.notifier = SystemdNotifier.from_environment(environment)
        self.liveness = Liveness(
            self.notifier,
            joined=lambda: self.pipeline.assignment.joined,
            summary=lambda: self.pipeline.stats.summary,
            started_at=self.clock.monotonic(),
        )
        topic = settings.records.dead_letter_topic
        self.dead_letters = KafkaDeadLetters(settings.kafka, topic) if topic is not None else None
        self.pipeline = Pipeline(
            settings, self.source, self.clock, observers=[self.liveness], dead_letters=self.dead_letters
        )
        self.metrics = self._metrics_endpoint() if settings.metrics.port else None

    def _on_lag(self, lag: dict[TopicPartition, int]) -> None:
        """Client statistics arrive from inside poll(), after the pipeline exists."""
        self.pipeline.lag.update(lag)

    def _metrics_endpoint(self) -> MetricsEndpoint:
        # Imported only when the endpoint is on: prometheus_client costs start-up time and memory.
        from consumer.metrics import MetricsEndpoint, MetricSources  # noqa: PLC0415

        metrics = self.settings.metrics
        sources = MetricSources(
            self.pipeline.counters,
            self.pipeline.gauges,
            self.pipeline.lag,
            self.pipeline.gc_monitor,
            lambda: self.liveness.stalled_for(self.clock.monotonic()),
        )
        return MetricsEndpoint(metrics.host, metrics.port, sources, metrics.health_stall_s)

    def start(self, stopping: Callable[[], bool]) -> bool:
        """Check the output, open the metrics endpoint, reach the cluster (and the dead-letter topic),
        join the group.

        Returns False when a shutdown was requested before the cluster answered.
        """
        self.pipeline.storage.check_writable()
        if self.metrics is not None:
            self.metrics.start()
        if not self.source.wait_for_cluster(stopping):
            return False
        if self.dead_letters is not None:
            self.dead_letters.connect()
        self.source.subscribe(self.pipeline.assignment)
        gc.freeze()  # what start-up allocated is permanent: keep it out of every collection
        self.pipeline.gc_monitor.install()
        return True

    def drain(self) -> None:
        """Finish every open file, commit, leave the group."""
        self.notifier.stopping()
        assignment = self.pipeline.assignment
        durable = assignment.finish_all(RotationReason.SHUTDOWN)
        durable.update(assignment.take_pending())
        for attempt in range(1, FINAL_COMMIT_ATTEMPTS + 1):
            if self.pipeline.committer.commit(durable):
                break
            time.sleep(0.5 * attempt)
        self.source.close()

    def abort(self) -> None:
        """Discard in-progress files; commit nothing more."""
        self.notifier.stopping()
        self.pipeline.assignment.abort_all()

    def close(self) -> None:
        self.pipeline.writes.close()
        self.pipeline.storage.close()
        self.pipeline.gc_monitor.uninstall()
        if self.metrics is not None:
            self.metrics.stop()


def run(settings: Settings, environment: Mapping[str, str], shutdown: ShutdownSignal) -> int:
    """Run until a signal (shutdown is installed); return the process exit code."""
    log = structlog.get_logger(component="daemon")
    check_allocator(settings.memory.allocator)
    daemon = Daemon(settings, environment)
    try:
        if daemon.start(stopping=lambda: shutdown.requested):
            log.info(
                "daemon_started",
                version=__version__,
                bootstrap_servers=settings.kafka.bootstrap_servers,
                output_root=settings.output.root,
            )
            daemon.pipeline.loop.run(stop=lambda: shutdown.requested)
        daemon.drain()
        shutdown.drained()
    except FatalError as exc:
        # One clear line: these errors are anticipated and their message says what to fix.
        log.error("fatal_error", error=str(exc), kind=type(exc).__name__)  # noqa: TRY400
        daemon.abort()
        daemon.source.close()
        return ExitCode.FATAL
    except ShutdownAbortedError as exc:
        log.error("shutdown_aborted", error=str(exc))  # noqa: TRY400
        daemon.abort()
        return ExitCode.SHUTDOWN_ABORTED
    except Exception:
        # A defect, not an anticipated failure: keep the traceback, but still leave nothing half-done.
        log.exception("unexpected_error")
        daemon.abort()
        return ExitCode.FATAL
    finally:
        daemon.close()
    pipeline = daemon.pipeline
    pipeline.stats.emit(daemon.clock.monotonic())
    counters = pipeline.counters
    log.info("daemon_stopped", records_in=counters.records_in, rows_archived=counters.rows_archived)
    return ExitCode.OK
