"""A pending S3 object: written in parts, visible only when commit() completes it, never on a whim.

The Parquet writer writes into a PartSink, which cuts the bytes into parts of exactly
`part_size` (S3-compatible servers such as R2 want equal parts). A file that ends before its
first part is full is published with one PutObject at commit; a larger one starts a multipart
upload with its first full part and is completed at commit. Nothing else completes an upload:
dropping or closing the sink does not, abort() aborts it. No-clobber: the object is published
with `If-None-Match: *` (or, without conditional writes, after checking that the key is free),
so a finished object is never replaced. Each object carries a random token in its metadata, so
a publication whose answer was lost, then retried, is recognised as our own.

Memory: an open file holds at most one part being filled; parts handed to uploads are held by
the shared UploadPool, at most `parts_in_flight` at once (a full part waits for a free slot).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from typing import TypeVar

import structlog

from consumer.errors import StorageError
from consumer.storage.s3_client import ObjectClient, UploadedPart

TOKEN_KEY = "archiver-upload"  # noqa: S105 - a metadata key (x-amz-meta-archiver-upload), not a secret
T = TypeVar("T")


class UploadPool:
    """Upload threads shared by every pending object; at most `slots` parts held by uploads at once."""

    def __init__(self, slots: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="s3-upload")
        self._slots = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._bytes = 0

    @property
    def bytes_in_flight(self) -> int:
        with self._lock:
            return self._bytes

    def submit(self, upload: Callable[[], T], nbytes: int) -> Future[T]:
        """Run upload on an upload thread; blocks while every slot is taken (backpressure)."""
        self._slots.acquire()
        with self._lock:
            self._bytes += nbytes
        try:
            future = self._executor.submit(upload)
        except BaseException:
            self._release(nbytes)
            raise
        future.add_done_callback(lambda _done: self._release(nbytes))
        return future

    def _release(self, nbytes: int) -> None:
        with self._lock:
            self._bytes -= nbytes
        self._slots.release()

    def close(self) -> None:
        """Wait for running uploads, then stop the threads."""
        self._executor.shutdown(wait=True)


class PartSink:
    """The byte stream the Parquet writer writes to: bytes cut into parts of exactly part_size."""

    def __init__(self, part_size: int, on_full: Callable[[bytearray], None]) -> None:
        self._part_size = part_size
        self._on_full = on_full
        self._part = bytearray()
        self._position = 0

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            room = self._part_size - len(self._part)
            self._part += view[:room]
            view = view[room:]
            if len(self._part) == self._part_size:
                full, self._part = self._part, bytearray()
                self._on_full(full)
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    @property
    def closed(self) -> bool:
        """Never closed for the writer: only commit() or abort() ends the file (pyarrow asks this)."""
        return False

    @property
    def buffered(self) -> int:
        """Bytes of the part being filled."""
        return len(self._part)

    def take(self) -> bytearray:
        """The bytes of the part being filled; the sink keeps none."""
        rest, self._part = self._part, bytearray()
        return rest


class S3PendingFile:
    """One object being uploaded; commit() publishes it, abort() leaves no object and no upload."""

    def __init__(
        self, objects: ObjectClient, key: str, uploads: UploadPool, part_size: int, conditional: bool
    ) -> None:
        self._objects = objects
        self._key = key
        self._uploads = uploads
        self._conditional = conditional
        self._metadata = {TOKEN_KEY: uuid.uuid4().hex}
        self._upload_id: str | None = None
        self._parts: list[Future[UploadedPart]] = []
        self.sink = PartSink(part_size, self._send)
        self._log = structlog.get_logger(component="s3_storage")

    @property
    def buffered_bytes(self) -> int:
        return self.sink.buffered

    def _send(self, part: bytearray) -> None:
        """Hand a part to an upload thread (the writer thread calls this); raise an earlier failure."""
        self._raise_failed_part()
        if self._upload_id is None:
            self._upload_id = self._objects.create_upload(self._key, self._metadata)
        number = len(self._parts) + 1
        upload = partial(self._objects.upload_part, self._key, self._upload_id, number, part)
        self._parts.append(self._uploads.submit(upload, len(part)))

    def _raise_failed_part(self) -> None:
        for future in self._parts:
            if future.done() and future.exception() is not None:
                future.result()

    def commit(self) -> int:
        """Upload what is left and publish the object under its key; return its size in bytes."""
        size = self.sink.tell()
        rest = self.sink.take()
        if self._upload_id is None:
            self._publish_whole(rest)
        else:
            if rest:
                self._send(rest)  # the last part may be smaller than the others
            self._publish_parts([future.result() for future in self._parts])
        return size

    def _publish_whole(self, body: bytearray) -> None:
        if not self._conditional:
            self._refuse_existing()
        if not self._objects.put(self._key, body, self._metadata, if_none_match=self._conditional):
            self._confirm_ours()

    def _publish_parts(self, parts: list[UploadedPart]) -> None:
        assert self._upload_id is not None  # set with the first part
        if not self._conditional:
            self._refuse_existing()
        if not self._objects.complete(self._key, self._upload_id, parts, if_none_match=self._conditional):
            self._confirm_ours()
        self._abort_others(keep=self._upload_id)  # the object is published whatever happens here

    def _refuse_existing(self) -> None:
        """Without conditional writes: check the key is free (a race remains, see DESIGN.md)."""
        if self._objects.metadata(self._key) is not None:
            raise StorageError(f"refusing to replace the finished object {self._objects.uri(self._key)}")

    def _confirm_ours(self) -> None:
        """The publication was refused: fine only if an earlier attempt of ours did it."""
        found = self._objects.metadata(self._key)
        uri = self._objects.uri(self._key)
        if found is None:
            raise StorageError(f"the upload of {uri} was aborted before it completed (by another member?)")
        if found.get(TOKEN_KEY) != self._metadata[TOKEN_KEY]:
            raise StorageError(f"refusing to replace the finished object {uri}")

    def _abort_others(self, keep: str | None) -> None:
        """Abort every other upload of this key (a retried CreateMultipartUpload leaves one behind).

        Best effort, logged: what is left is invisible, and recovery or a lifecycle rule aborts it.
        """
        try:
            for key, upload_id in list(self._objects.uploads(self._key)):
                if key == self._key and upload_id != keep:
                    self._objects.abort_upload(key, upload_id)
        except StorageError as exc:
            self._log.warning("upload_abort_failed", path=self._objects.uri(self._key), error=str(exc))

    def abort(self) -> None:
        """Drop the buffered bytes, let running part uploads end, abort the multipart upload.

        A failure is logged, not raised: nothing is visible either way, and the next owner's
        recovery (or a bucket lifecycle rule) aborts what is left.
        """
        self.sink.take()
        wait(self._parts)
        if self._upload_id is None:
            return
        try:
            self._objects.abort_upload(self._key, self._upload_id)
        except StorageError as exc:
            self._log.warning("upload_abort_failed", path=self._objects.uri(self._key), error=str(exc))
            return
        self._abort_others(keep=None)
