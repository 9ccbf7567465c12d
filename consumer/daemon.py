"""Composition root and lifecycle: build the parts, join the group, loop, drain on shutdown.

Exit paths: a signal drains (finish every open file, commit, leave the group) and exits 0; a
fatal error or an aborted drain discards in-progress files, commits nothing more and exits
non-zero. Offsets are never committed for data that is not in a finished file.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

import structlog

from consumer import __version__
from consumer.assignment import Assignment
from consumer.budget import MemoryBudget
from consumer.clock import SystemClock
from consumer.config import Settings
from consumer.convert import RowConverter, metadata_fields
from consumer.errors import ExitCode, FatalError, ShutdownAbortedError
from consumer.ingest import Ingest
from consumer.kafka import KafkaSource
from consumer.loop import ArchiveLoop
from consumer.naming import DayRule
from consumer.offsets import OffsetCommitter
from consumer.parquet_file import WriterOptions
from consumer.partition_writer import PartitionWriter
from consumer.records import Decoder, TopicPartition
from consumer.recovery import Recovery
from consumer.rotation import RotationPolicy, RotationReason
from consumer.schema import SchemaPolicy, TopicSchema, TopicSchemas
from consumer.segment import SinkSettings
from consumer.shutdown import ShutdownSignal
from consumer.stats import Counters, Gauges, GcMonitor, StatsReporter
from consumer.storage import LocalStorage

# The hot path allocates one dict per record and frees it within the poll; a large first
# generation keeps the cyclic collector from rescanning those short-lived rows many times over.
GC_THRESHOLDS = (100_000, 20, 50)
FINAL_COMMIT_ATTEMPTS = 3


class Daemon:
    """All the parts, wired once."""

    def __init__(self, settings: Settings) -> None:
        output, rotation = settings.output, settings.rotation
        self.settings = settings
        self.clock = SystemClock()
        self.storage = LocalStorage(Path(output.root))
        self.counters = Counters()
        self.gc_monitor = GcMonitor()
        self.schemas = TopicSchemas(SchemaPolicy())
        self._sinks = SinkSettings(
            self.storage,
            WriterOptions(output.compression, output.compression_level),
            rotation.row_group_max_bytes,
            rotation.row_group_max_rows,
            DayRule(output.date_field, output.date_field_unit),
        )
        self._policy = RotationPolicy(
            rotation.file_max_bytes,
            rotation.file_max_age_s,
            rotation.file_max_idle_s,
            rotation.file_max_row_groups,
        )
        self._metadata_fields = metadata_fields(output.metadata_columns)
        self.stats = StatsReporter(
            settings.stats.interval_s, self.counters, self.gc_monitor, self._gauges, self.clock.monotonic()
        )
        self.source = KafkaSource(settings.kafka, settings.stats.interval_s, self.stats.update_lag)
        self.committer = OffsetCommitter(self.source.commit)
        self.assignment = Assignment(
            Recovery(self.storage), self.schemas, self._make_writer, self.committer, self.clock
        )
        ingest = Ingest(
            Decoder(settings.records.max_value_bytes, settings.records.tombstones == "quarantine"),
            RowConverter(output.metadata_columns),
            MemoryBudget(settings.memory.max_buffered_bytes),
            self.counters,
        )
        self.loop = ArchiveLoop(self.source, self.assignment, ingest, self.committer, self.stats, self.clock)

    def _make_writer(self, tp: TopicPartition, topic: TopicSchema) -> PartitionWriter:
        return PartitionWriter(
            tp, topic, self._metadata_fields, self._sinks, self._policy, self.counters.record
        )

    def _gauges(self) -> Gauges:
        writers = list(self.assignment.writers())
        return Gauges(
            buffered_rows=sum(writer.buffered_rows for writer in writers),
            buffered_bytes=sum(writer.buffered_bytes for writer in writers),
            open_files=sum(writer.open_files for writer in writers),
            partitions=len(writers),
            tracked_topics=len(self.schemas),
        )

    def start(self) -> None:
        """Check the output, reach the cluster, join the group."""
        self.storage.check_writable()
        self.source.wait_for_cluster()
        self.source.subscribe(self.assignment)
        gc.freeze()  # what start-up allocated is permanent: keep it out of every collection
        gc.set_threshold(*GC_THRESHOLDS)
        self.gc_monitor.install()

    def drain(self) -> None:
        """Finish every open file, commit, leave the group."""
        durable = self.assignment.finish_all(RotationReason.SHUTDOWN)
        durable.update(self.assignment.take_pending())
        for attempt in range(1, FINAL_COMMIT_ATTEMPTS + 1):
            if self.committer.commit(durable):
                break
            time.sleep(0.5 * attempt)
        self.source.close()

    def abort(self) -> None:
        """Discard in-progress files; commit nothing more."""
        self.assignment.abort_all()


def run(settings: Settings) -> int:
    """Run until a signal; return the process exit code."""
    log = structlog.get_logger(component="daemon")
    shutdown = ShutdownSignal(settings.shutdown.timeout_s)
    shutdown.install()
    daemon = Daemon(settings)
    try:
        daemon.start()
        log.info(
            "daemon_started",
            version=__version__,
            bootstrap_servers=settings.kafka.bootstrap_servers,
            output_root=settings.output.root,
        )
        daemon.loop.run(stop=lambda: shutdown.requested)
        daemon.drain()
        shutdown.disarm()
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
        daemon.gc_monitor.uninstall()
    daemon.stats.emit(daemon.clock.monotonic())
    log.info(
        "daemon_stopped", records_in=daemon.counters.records_in, rows_archived=daemon.counters.rows_archived
    )
    return ExitCode.OK
