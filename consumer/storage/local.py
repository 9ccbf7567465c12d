"""Durable file storage on a local filesystem: hidden in-progress files that become visible atomically.

A file is written under its in-progress name, then committed: fsync, hard-link to the final name
(which never replaces an existing file), unlink the in-progress name, fsync the folder. A crash at
any point leaves either no finished file or a complete one. Every OSError becomes a StorageError
naming the path, at this one boundary.
"""

from __future__ import annotations

import errno
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from consumer.errors import StorageError
from consumer.naming import (
    FileKind,
    SegmentFileName,
    parse_date_directory,
    parse_file_name,
    parse_in_progress_name,
    topic_directory,
)
from consumer.storage.base import TopicListing


@contextmanager
def _storage_errors(action: str, path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StorageError(f"cannot {action} {path}: {reason}") from exc


class LocalPendingFile:
    """A file being written under its hidden name; commit() makes it durable and visible."""

    def __init__(self, root: Path, name: SegmentFileName) -> None:
        self._final = root / name.path
        self._temporary = root / name.in_progress_path
        with _storage_errors("create", self._temporary):
            _make_directories(root, self._temporary.parent)
            self.sink = pa.OSFile(str(self._temporary), "wb")

    def commit(self) -> int:
        """Flush to disk and publish under the final name; return the file's size in bytes."""
        with _storage_errors("finish", self._final):
            os.fsync(self.sink.fileno())
            size = int(self.sink.tell())
            self.sink.close()
            _publish(self._temporary, self._final)
            _fsync_directory(self._final.parent)
        return size

    def abort(self) -> None:
        """Discard the file; nothing becomes visible."""
        with _storage_errors("discard", self._temporary):
            if not self.sink.closed:
                self.sink.close()
            self._temporary.unlink(missing_ok=True)


def probe_name() -> str:
    """The writability probe's file name, this process's own: group members on one host (or on
    hosts sharing a mounted root) may check the root at the same moment."""
    return f".write-probe-{socket.gethostname()}-{os.getpid()}"


class LocalStorage:
    """The archive on a local (or mounted) filesystem."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def check_writable(self) -> None:
        """Create the root if needed and prove a file can be written and removed there."""
        probe = self.root / probe_name()
        with _storage_errors("write to output root", self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"ok")
            probe.unlink()

    def create(self, name: SegmentFileName) -> LocalPendingFile:
        return LocalPendingFile(self.root, name)

    def scan(self, kind: FileKind, topic: str) -> TopicListing:
        """List the finished and in-progress files of a topic (all partitions, all dates).

        Names are read as strings (no Path per file): recovery lists the whole topic on every
        assignment, so this runs over every file the topic ever had.
        """
        listing = TopicListing()
        base = self.root / topic_directory(kind, topic)
        with _storage_errors("list", base):
            if not base.is_dir():
                return listing
            for folder_name in sorted(os.listdir(base)):
                day = parse_date_directory(folder_name)
                folder = base / folder_name
                if day is None or not folder.is_dir():
                    continue
                for name in os.listdir(folder):
                    self._classify(kind, topic, day, folder, name, listing)
        return listing

    def _classify(
        self, kind: FileKind, topic: str, day: date, folder: Path, name: str, listing: TopicListing
    ) -> None:
        finished = parse_file_name(name)
        if finished is not None and finished[0] == topic:
            listing.finished.append(SegmentFileName(kind, topic, finished[1], finished[2], day))
            return
        in_progress = parse_in_progress_name(name)
        if in_progress is not None and in_progress[0] == topic:
            listing.in_progress.append((in_progress[1], str((folder / name).relative_to(self.root))))

    def read_metadata(self, relative: str) -> pq.FileMetaData:
        path = self.root / relative
        with _storage_errors("read", path):
            return pq.read_metadata(str(path))

    def open_input(self, relative: str) -> pa.NativeFile:
        return pa.OSFile(str(self.root / relative), "rb")

    def delete(self, relative: str) -> None:
        path = self.root / relative
        with _storage_errors("delete", path):
            path.unlink(missing_ok=True)
            _fsync_directory(path.parent)

    def claim(self, relative: str, content: bytes) -> bytes:
        """Write a temporary file, then hard-link it to the path: the link fails if the path exists."""
        path = self.root / relative
        temporary = path.parent / f".{path.name}.{uuid.uuid4().hex}.claim"
        with _storage_errors("claim", path):
            _make_directories(self.root, path.parent)
            temporary.write_bytes(content)
            _fsync_file(temporary)
            try:
                os.link(temporary, path)
            except FileExistsError:
                return path.read_bytes()
            finally:
                temporary.unlink(missing_ok=True)
            _fsync_directory(path.parent)
        return content

    def read_folder(self, relative: str) -> dict[str, bytes]:
        folder = self.root / relative
        with _storage_errors("read", folder):
            if not folder.is_dir():
                return {}
            entries = sorted(folder.iterdir())
            return {entry.name: entry.read_bytes() for entry in entries if not entry.name.startswith(".")}

    def discard_in_progress(self, relative: str) -> None:
        """An in-progress file is a hidden file: delete it."""
        self.delete(relative)

    def describe(self, relative: str) -> str:
        """The location of a relative path, for messages."""
        return str(self.root / relative)

    def buffered_bytes(self) -> int:
        """Written bytes go to the operating system, not to this process's memory."""
        return 0

    def close(self) -> None:
        """Nothing to release."""


def _make_directories(root: Path, directory: Path) -> None:
    """Create directory and its missing parents under root, making each new entry durable."""
    missing: list[Path] = []
    current = directory
    while not current.exists() and current != root.parent:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        _fsync_directory(path.parent)


def _publish(temporary: Path, final: Path) -> None:
    """Give the file its final name without ever replacing an existing finished file."""
    try:
        os.link(temporary, final)
    except FileExistsError:
        raise StorageError(f"refusing to replace the finished file {final}") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # Filesystems without hard links: a checked rename (this process owns the partition).
        if final.exists():
            raise StorageError(f"refusing to replace the finished file {final}") from None
        os.rename(temporary, final)
        return
    temporary.unlink()


def _fsync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
