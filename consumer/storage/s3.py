"""The archive in an S3 bucket under a prefix: the same layout, names and invariants as a local folder.

An object is visible only once complete (PutObject, or CompleteMultipartUpload at commit), so
there are no hidden in-progress objects: what a crash leaves is an incomplete multipart upload
whose key is the final name. scan() lists those as in-progress files, under the hidden name the
local archive would use, and discard_in_progress() aborts every upload of that key. Listings are
strongly consistent on S3, so recovery sees every finished object.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.parquet as pq

from consumer.config import S3Root, S3Settings
from consumer.errors import StorageError, StorageUnreachableError
from consumer.naming import (
    IN_PROGRESS_SUFFIX,
    FileKind,
    SegmentFileName,
    parse_date_directory,
    parse_file_name,
    parse_in_progress_name,
    topic_directory,
)
from consumer.storage.base import TopicListing
from consumer.storage.s3_client import ObjectClient, build_client, build_filesystem
from consumer.storage.s3_upload import S3PendingFile, UploadPool

PROBE = ".write-probe"


class S3Storage:
    """The archive under s3://bucket/prefix."""

    def __init__(self, root: S3Root, settings: S3Settings) -> None:
        self._bucket = root.bucket
        self._prefix = f"{root.prefix}/" if root.prefix else ""
        self._objects = ObjectClient(build_client(settings), root.bucket)
        self._filesystem = build_filesystem(settings)
        self._uploads = UploadPool(settings.parts_in_flight)
        self._part_size = settings.part_size_bytes
        self._conditional = settings.conditional_writes
        self._pending: weakref.WeakSet[S3PendingFile] = weakref.WeakSet()

    def _key(self, relative: str) -> str:
        return f"{self._prefix}{relative}"

    def check_writable(self) -> None:
        """Write, list and delete a probe object: proves the endpoint, bucket, credentials and rights."""
        probe = self._key(PROBE)
        self._objects.put(probe, b"ok", {}, if_none_match=False)
        next(self._objects.keys(self._prefix), None)
        next(self._objects.uploads(self._prefix), None)
        self._objects.delete(probe)

    def create(self, name: SegmentFileName) -> S3PendingFile:
        pending = S3PendingFile(
            self._objects, self._key(name.path), self._uploads, self._part_size, self._conditional
        )
        self._pending.add(pending)
        return pending

    def scan(self, kind: FileKind, topic: str) -> TopicListing:
        """List the finished objects and the incomplete uploads of a topic (all partitions, all dates)."""
        listing = TopicListing()
        base = topic_directory(kind, topic)
        prefix = self._key(f"{base}/")
        for key in self._objects.keys(prefix):
            name = _segment_name(kind, topic, key.removeprefix(prefix))
            if name is not None:
                listing.finished.append(name)
        stale = {
            (name.partition, name.in_progress_path)
            for key, _upload in self._objects.uploads(prefix)
            if (name := _segment_name(kind, topic, key.removeprefix(prefix))) is not None
        }
        listing.in_progress = sorted(stale)
        return listing

    def read_metadata(self, relative: str) -> pq.FileMetaData:
        with self._reading(relative), self.open_input(relative) as source:
            return pq.read_metadata(source)

    def open_input(self, relative: str) -> pa.NativeFile:
        return self._filesystem.open_input_file(f"{self._bucket}/{self._key(relative)}")

    @contextmanager
    def _reading(self, relative: str) -> Iterator[None]:
        # The object was just listed: failing to read it is the bucket's state, not the file's.
        try:
            yield
        except OSError as exc:
            raise StorageUnreachableError(f"cannot read {self.describe(relative)}: {exc}") from exc

    def delete(self, relative: str) -> None:
        self._objects.delete(self._key(relative))

    def claim(self, relative: str, content: bytes) -> bytes:
        """PutObject with If-None-Match: *; without conditional writes, a checked put (see DESIGN.md)."""
        key = self._key(relative)
        if not self._conditional and (existing := self._objects.get(key)) is not None:
            return existing
        if self._objects.put(key, content, {}, if_none_match=self._conditional):
            return content
        existing = self._objects.get(key)
        if existing is None:
            raise StorageError(f"{self.describe(relative)} was refused as existing, then not found")
        return existing

    def read_folder(self, relative: str) -> dict[str, bytes]:
        prefix = self._key(f"{relative}/")
        contents = {}
        for key in self._objects.keys(prefix):
            name = key.removeprefix(prefix)
            if "/" not in name and (content := self._objects.get(key)) is not None:
                contents[name] = content
        return contents

    def discard_in_progress(self, relative: str) -> None:
        """Abort every incomplete upload of the object an in-progress name stands for."""
        directory, _, hidden = relative.rpartition("/")
        if parse_in_progress_name(hidden) is None:
            raise StorageError(f"{self.describe(relative)} is not the name of an in-progress file")
        key = self._key(f"{directory}/{hidden[1 : -len(IN_PROGRESS_SUFFIX)]}")
        for found, upload_id in list(self._objects.uploads(key)):
            if found == key:
                self._objects.abort_upload(key, upload_id)

    def describe(self, relative: str) -> str:
        return self._objects.uri(self._key(relative))

    def buffered_bytes(self) -> int:
        """Parts being filled by open files plus parts held by running uploads."""
        return sum(pending.buffered_bytes for pending in list(self._pending)) + self._uploads.bytes_in_flight

    def close(self) -> None:
        self._uploads.close()


def _segment_name(kind: FileKind, topic: str, inside: str) -> SegmentFileName | None:
    """The file a key names, given its part below the topic's folder: `date=YYYY-MM-DD/<file name>`."""
    folder, _, file_name = inside.partition("/")
    day = parse_date_directory(folder)
    parsed = parse_file_name(file_name)
    if day is None or parsed is None or parsed[0] != topic:
        return None
    return SegmentFileName(kind, topic, parsed[1], parsed[2], day)
