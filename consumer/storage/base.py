"""The storage protocol: what segments, recovery and verify need from wherever the archive lives.

Two implementations keep the same invariants: a local folder (`local.py`) and an S3 bucket
(`s3.py`). A file is written to a `PendingFile` and becomes visible under its final name only
when committed, all at once, never replacing a finished file; an aborted file leaves nothing
visible. Paths are relative to the archive's root and use '/', as `naming.py` builds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from consumer.naming import FileKind, SegmentFileName


@dataclass
class TopicListing:
    """The files of one topic and kind found on storage."""

    finished: list[SegmentFileName] = field(default_factory=list)
    in_progress: list[tuple[int, str]] = field(default_factory=list)  # (partition, relative path)


class Sink(Protocol):
    """The byte stream a Parquet writer writes a pending file through."""

    def write(self, data: bytes) -> int: ...

    def tell(self) -> int: ...


class PendingFile(Protocol):
    """A file being written: invisible until commit(), gone after abort()."""

    @property
    def sink(self) -> Sink: ...

    def commit(self) -> int:
        """Make the file durable and visible under its final name; return its size in bytes."""
        ...

    def abort(self) -> None:
        """Discard the file; nothing becomes visible."""
        ...


class ArchiveStorage(Protocol):
    """Where finished files live; every failure is raised as a StorageError naming the location."""

    def check_writable(self) -> None:
        """Prove, before anything connects to Kafka, that files can be written and removed."""
        ...

    def create(self, name: SegmentFileName) -> PendingFile: ...

    def scan(self, kind: FileKind, topic: str) -> TopicListing:
        """The finished and in-progress files of a topic (all partitions, all dates)."""
        ...

    def read_metadata(self, relative: str) -> pq.FileMetaData: ...

    def open_input(self, relative: str) -> pa.NativeFile:
        """A finished file opened for random-access reads; pyarrow's errors are left to the caller."""
        ...

    def delete(self, relative: str) -> None: ...

    def claim(self, relative: str, content: bytes) -> bytes:
        """Create a small file holding content unless one exists; return what the file holds.

        Atomic: of several processes claiming one path, the first one's content wins for all.
        """
        ...

    def read_folder(self, relative: str) -> dict[str, bytes]:
        """Every small file directly in a folder, by name, with its contents (none if no folder)."""
        ...

    def discard_in_progress(self, relative: str) -> None:
        """Remove what a crash left of an in-progress file listed by scan()."""
        ...

    def describe(self, relative: str) -> str:
        """The location of a relative path, for messages."""
        ...

    def buffered_bytes(self) -> int:
        """Bytes of pending files held in this process's memory (upload buffers)."""
        ...

    def close(self) -> None:
        """Release clients and threads; pending files must be committed or aborted first."""
        ...
