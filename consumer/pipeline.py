"""The archive side, wired from the settings: everything between a record source and finished files.

The pipeline does not know where records come from: the daemon plugs in the Kafka consumer (and
the dead-letter producer, when one is configured), tests plug in a scripted source and a fake clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from consumer.assignment import Assignment
from consumer.budget import MemoryBudget
from consumer.buffer import BufferTally
from consumer.clock import Clock
from consumer.column_registry import ColumnRegistry
from consumer.config import SchemaSettings, Settings
from consumer.convert import RowConverter, metadata_fields
from consumer.counters import Counters
from consumer.dead_letters import DeadLetters
from consumer.ingest import Ingest
from consumer.loop import ArchiveLoop, IterationObserver, RecordSource
from consumer.naming import DayRule
from consumer.offsets import OffsetCommitter
from consumer.parquet_file import WriterOptions
from consumer.partition_writer import PartitionWriter
from consumer.records import Decoder, TopicPartition
from consumer.recovery import Recovery
from consumer.rotation import RotationPolicy
from consumer.schema import FixedColumns, Kind, SchemaPolicy, TopicSchema
from consumer.segment import SinkSettings
from consumer.stats import ConsumerLag, Gauges, GcMonitor, StatsReporter
from consumer.storage import open_storage
from consumer.topic_schemas import TopicSchemas
from consumer.write_queue import WriteQueue


def schema_policy(settings: SchemaSettings) -> SchemaPolicy:
    return SchemaPolicy(settings.max_columns, settings.min_key_frequency, settings.min_key_count)


def fixed_schemas(settings: SchemaSettings) -> dict[str, FixedColumns]:
    return {
        topic: FixedColumns({name: Kind(kind) for name, kind in fixed.columns.items()}, fixed.unknown_keys)
        for topic, fixed in settings.fixed.items()
    }


class Pipeline:
    """Storage, schemas, writers, assignment, committer, stats and the loop, built once."""

    def __init__(
        self,
        settings: Settings,
        source: RecordSource,
        clock: Clock,
        observers: Sequence[IterationObserver] = (),
        dead_letters: DeadLetters | None = None,
    ) -> None:
        output, rotation = settings.output, settings.rotation
        self._clock = clock
        self.storage = open_storage(output)
        self.counters = Counters()
        self.gc_monitor = GcMonitor()
        self.schemas = TopicSchemas(schema_policy(settings.schema), fixed_schemas(settings.schema))
        self.writes = WriteQueue()
        self.registry = ColumnRegistry(self.storage)
        buffered = BufferTally()
        self._sinks = SinkSettings(
            self.storage,
            WriterOptions(output.compression, output.compression_level),
            rotation.row_group_max_bytes,
            rotation.row_group_max_rows,
            DayRule(output.date_field, output.date_field_unit),
            self.writes,
            self.registry,
            buffered,
            dead_letters,
        )
        self._policy = RotationPolicy(
            rotation.file_max_bytes,
            rotation.file_max_age_s,
            rotation.file_max_idle_s,
            rotation.file_max_row_groups,
        )
        self._metadata_fields = metadata_fields(output.metadata_columns)
        self.committer = OffsetCommitter(source.commit, self.counters.commit_seconds)
        self.lag = ConsumerLag(lambda tp: self.assignment.writer(tp) is not None)
        self.assignment = Assignment(
            Recovery(self.storage, self.registry), self.schemas, self._make_writer, self.committer, clock
        )
        self.stats = StatsReporter(
            settings.stats.interval_s,
            self.counters,
            self.gc_monitor,
            self.gauges,
            self.lag,
            clock.monotonic(),
        )
        ingest = Ingest(
            Decoder(settings.records.max_value_bytes, settings.records.tombstones == "quarantine"),
            RowConverter(output.metadata_columns),
            MemoryBudget(settings.memory.max_buffered_bytes, self.writes, buffered),
            self.counters,
            dead_letters,
        )
        self.loop = ArchiveLoop(
            source, self.assignment, ingest, self.committer, clock, [self.stats, *observers]
        )

    def _make_writer(self, tp: TopicPartition, topic: TopicSchema) -> PartitionWriter:
        return PartitionWriter(
            tp, topic, self._metadata_fields, self._sinks, self._policy, self.counters.record
        )

    def gauges(self) -> Gauges:
        writers = list(self.assignment.writers())
        opened = [at for writer in writers if (at := writer.opened_at) is not None]
        return Gauges(
            buffered_rows=sum(writer.buffered_rows for writer in writers),
            buffered_bytes=sum(writer.buffered_bytes for writer in writers) + self.writes.pending_bytes,
            upload_bytes=self.storage.buffered_bytes(),
            open_files=sum(writer.open_files for writer in writers),
            partitions=len(writers),
            tracked_topics=len(self.schemas),
            oldest_unfinished_s=self._clock.monotonic() - min(opened) if opened else 0.0,
        )
