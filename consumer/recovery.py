"""Recovery on assignment: where a partition's archive ends, and clearing what a crash left behind.

For each newly assigned partition: delete its stale in-progress files, then find the newest
complete segment. Segments finish quarantine file first, data file last, so the newest segment
is complete if its data file exists, or if only its quarantine file exists and its footer says
the segment had no data rows. A lone quarantine file of a segment that expected data is an orphan
of a crash between the two publications: it is deleted and the segment is consumed again.
The partition resumes after the last offset of the newest complete segment, and its topic's
columns keep the kinds claimed in the archive (column_registry.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow.parquet as pq
import structlog

from consumer.column_registry import ColumnRegistry
from consumer.errors import CorruptFileError, StorageError, StorageUnreachableError
from consumer.naming import FileKind, SegmentFileName
from consumer.schema import Kind
from consumer.segment import METADATA_PREFIX
from consumer.storage import ArchiveStorage


@dataclass(frozen=True, slots=True)
class PartitionArchive:
    """What the archive already holds for one partition."""

    resume_offset: int | None = None
    schema: dict[str, Kind] = field(default_factory=dict)


def footer_values(metadata: pq.FileMetaData) -> dict[str, str]:
    """The archiver's key-value metadata of a file, without the prefix."""
    raw = metadata.metadata or {}
    prefix = METADATA_PREFIX.encode()
    return {
        key[len(prefix) :].decode(): value.decode() for key, value in raw.items() if key.startswith(prefix)
    }


class Recovery:
    """Reads the archive's footers to decide where assigned partitions resume."""

    def __init__(self, storage: ArchiveStorage, registry: ColumnRegistry) -> None:
        self._storage = storage
        self._registry = registry
        self._log = structlog.get_logger(component="recovery")

    def recover(self, topic: str, partitions: Iterable[int]) -> dict[int, PartitionArchive]:
        assigned = set(partitions)
        data = self._storage.scan(FileKind.DATA, topic)
        quarantine = self._storage.scan(FileKind.QUARANTINE, topic)
        self._discard_stale(topic, assigned, [*data.in_progress, *quarantine.in_progress])
        newest_data, newest_quarantine = _newest(data.finished), _newest(quarantine.finished)
        schema = self._registry.load(topic)
        return {
            partition: PartitionArchive(
                self._resume(newest_data.get(partition), newest_quarantine.get(partition)), schema
            )
            for partition in sorted(assigned)
        }

    def _discard_stale(self, topic: str, assigned: set[int], in_progress: list[tuple[int, str]]) -> None:
        for owner, path in in_progress:
            if owner in assigned:
                self._storage.discard_in_progress(path)
                self._log.info("stale_file_deleted", path=path, topic=topic, partition=owner)

    def _resume(
        self, newest_data: SegmentFileName | None, newest_quarantine: SegmentFileName | None
    ) -> int | None:
        if newest_quarantine and (
            newest_data is None or newest_quarantine.start_offset > newest_data.start_offset
        ):
            footer = self._footer(newest_quarantine)
            if int(footer["data_records"]) == 0:
                return int(footer["last_offset"]) + 1
            self._storage.delete(newest_quarantine.path)
            self._log.warning(
                "orphan_quarantine_deleted",
                path=newest_quarantine.path,
                topic=newest_quarantine.topic,
                partition=newest_quarantine.partition,
            )
        if newest_data is None:
            return None
        return int(self._footer(newest_data)["last_offset"]) + 1

    def _footer(self, name: SegmentFileName) -> dict[str, str]:
        try:
            values = footer_values(self._storage.read_metadata(name.path))
            int(values["last_offset"])
            int(values["data_records"])
        except StorageUnreachableError:
            raise  # nothing is known about the file: no advice to move it
        except (StorageError, KeyError, ValueError, OSError) as exc:
            raise CorruptFileError(
                f"finished file {self._storage.describe(name.path)} cannot be read ({exc}); it is left in "
                "place: move it out of the archive to archive the partition again from its committed offset"
            ) from exc
        return values


def _newest(files: Iterable[SegmentFileName]) -> dict[int, SegmentFileName]:
    """Each partition's file with the highest start offset, in one pass over the topic's files."""
    newest: dict[int, SegmentFileName] = {}
    for name in files:
        held = newest.get(name.partition)
        if held is None or name.start_offset > held.start_offset:
            newest[name.partition] = name
    return newest
