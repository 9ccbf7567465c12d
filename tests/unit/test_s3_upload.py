"""Pending S3 objects without a server: parts, publication, no-clobber, lost answers, abort, the pool."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future

import pytest
import structlog

from consumer.errors import StorageError
from consumer.storage.s3_client import UploadedPart
from consumer.storage.s3_upload import TOKEN_KEY, PartSink, S3PendingFile, UploadPool

KEY = "archive/events/date=2024-01-02/events+0+00000000000000000000.parquet"
PART = 1000  # the fake takes any part size; S3's 5 MiB minimum is the config's business


class FakeObjects:
    """ObjectClient in memory: objects with metadata, uploads with parts; scripted refusals and failures."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.uploads_by_id: dict[str, tuple[str, dict[str, str], dict[int, bytes]]] = {}
        self.calls: list[str] = []
        self.lose_answer = False  # publish, then report a refusal (the answer was lost, the retry refused)
        self.fail_parts = False
        self.fail_abort = False

    def uri(self, key: str) -> str:
        return f"s3://bucket/{key}"

    def put(
        self, key: str, body: bytes | bytearray, metadata: Mapping[str, str], if_none_match: bool
    ) -> bool:
        self.calls.append("put")
        if if_none_match and key in self.objects:
            return False
        self.objects[key] = (bytes(body), dict(metadata))
        return not self.lose_answer

    def metadata(self, key: str) -> dict[str, str] | None:
        self.calls.append("head")
        found = self.objects.get(key)
        return None if found is None else found[1]

    def create_upload(self, key: str, metadata: Mapping[str, str]) -> str:
        self.calls.append("create")
        upload_id = f"u{len(self.uploads_by_id)}"
        self.uploads_by_id[upload_id] = (key, dict(metadata), {})
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes | bytearray) -> UploadedPart:
        self.calls.append(f"part {number}")
        if self.fail_parts or upload_id not in self.uploads_by_id:
            raise StorageError(f"cannot upload part {number} of {self.uri(key)}: InternalError")
        self.uploads_by_id[upload_id][2][number] = bytes(body)
        return UploadedPart(number, f"etag{number}")

    def complete(self, key: str, upload_id: str, parts: list[UploadedPart], if_none_match: bool) -> bool:
        self.calls.append("complete")
        if upload_id not in self.uploads_by_id or (if_none_match and key in self.objects):
            return False
        _key, metadata, stored = self.uploads_by_id.pop(upload_id)
        self.objects[key] = (b"".join(stored[part.number] for part in parts), metadata)
        return not self.lose_answer

    def abort_upload(self, key: str, upload_id: str) -> None:
        self.calls.append("abort")
        if self.fail_abort:
            raise StorageError(f"cannot abort the upload of {self.uri(key)}: SlowDown")
        self.uploads_by_id.pop(upload_id, None)

    def uploads(self, prefix: str) -> list[tuple[str, str]]:
        return [
            (key, upload_id)
            for upload_id, (key, _m, _p) in self.uploads_by_id.items()
            if key.startswith(prefix)
        ]


@pytest.fixture
def pool() -> UploadPool:
    return UploadPool(2)


def _pending(objects: FakeObjects, pool: UploadPool, conditional: bool = True) -> S3PendingFile:
    return S3PendingFile(objects, KEY, pool, PART, conditional)  # type: ignore[arg-type]


def _wait_idle(pool: UploadPool) -> None:
    deadline = time.monotonic() + 5
    while pool.bytes_in_flight and time.monotonic() < deadline:
        time.sleep(0.01)


class TestPartSink:
    def test_cuts_parts_of_exactly_the_part_size(self) -> None:
        """Writes of any size become parts of exactly part_size; the rest waits; tell() counts everything."""
        parts: list[bytes] = []
        sink = PartSink(10, lambda part: parts.append(bytes(part)))
        for chunk in (b"abc", b"defghijklmnopqrstuvwxy", b"z"):
            sink.write(chunk)
        assert parts == [b"abcdefghij", b"klmnopqrst"]
        assert (sink.tell(), sink.buffered) == (26, 6)
        assert bytes(sink.take()) == b"uvwxyz"
        assert sink.buffered == 0


class TestPublication:
    def test_small_file_is_one_conditional_put_with_a_token(self, pool: UploadPool) -> None:
        """A file under one part: one PUT with If-None-Match and our token; no multipart upload."""
        objects = FakeObjects()
        pending = _pending(objects, pool)
        pending.sink.write(b"x" * 10)
        assert pending.commit() == 10
        assert objects.calls == ["put"]
        body, metadata = objects.objects[KEY]
        assert body == b"x" * 10
        assert len(metadata[TOKEN_KEY]) == 32

    def test_large_file_uploads_numbered_parts_then_completes(self, pool: UploadPool) -> None:
        """Full parts go up as they fill; commit sends the short last part and completes in order."""
        objects = FakeObjects()
        pending = _pending(objects, pool)
        payload = bytes(range(256)) * 10
        pending.sink.write(payload)
        assert objects.calls[0] == "create"
        assert KEY not in objects.objects
        assert pending.commit() == len(payload)
        assert objects.objects[KEY][0] == payload
        assert sorted(call for call in objects.calls if call.startswith("part")) == [
            "part 1",
            "part 2",
            "part 3",
        ]
        assert objects.uploads_by_id == {}

    def test_a_lost_answer_is_recognised_by_the_token(self, pool: UploadPool) -> None:
        """The publication happened but was reported refused: our token on the object means success."""
        for size in (10, 2500):
            objects = FakeObjects()
            objects.lose_answer = True
            pending = _pending(objects, pool)
            pending.sink.write(b"y" * size)
            assert pending.commit() == size

    @pytest.mark.parametrize("conditional", [True, False])
    @pytest.mark.parametrize("size", [10, 2500])
    def test_never_replaces_a_finished_object(self, pool: UploadPool, conditional: bool, size: int) -> None:
        """An object of someone else's under the key: StorageError, and the object is untouched."""
        objects = FakeObjects()
        objects.objects[KEY] = (b"original", {TOKEN_KEY: "theirs"})
        pending = _pending(objects, pool, conditional)
        pending.sink.write(b"z" * size)
        with pytest.raises(StorageError, match="refusing to replace the finished object s3://bucket/archive"):
            pending.commit()
        pending.abort()
        assert objects.objects[KEY] == (b"original", {TOKEN_KEY: "theirs"})
        assert objects.uploads_by_id == {}

    def test_an_upload_aborted_by_someone_else_fails_the_commit(self, pool: UploadPool) -> None:
        """The upload vanished before completion and no object is there: a clear StorageError."""
        objects = FakeObjects()
        pending = _pending(objects, pool)
        pending.sink.write(b"a" * 2 * PART)  # every part uploaded: commit only completes
        _wait_idle(pool)
        objects.uploads_by_id.clear()
        with pytest.raises(StorageError, match="aborted before it completed"):
            pending.commit()

    def test_completion_aborts_a_twin_upload_of_the_key(self, pool: UploadPool) -> None:
        """Another upload of the same key (a retried start's twin) is aborted once the object is published."""
        objects = FakeObjects()
        twin = objects.create_upload(KEY, {})
        pending = _pending(objects, pool)
        pending.sink.write(b"b" * 1500)
        pending.commit()
        assert twin not in objects.uploads_by_id
        assert objects.uploads_by_id == {}


class TestFailureAndAbort:
    def test_a_failed_part_fails_the_next_write_and_the_commit(self, pool: UploadPool) -> None:
        """A part that failed past its retries is raised by the next part hand-off and by commit."""
        objects = FakeObjects()
        objects.fail_parts = True
        pending = _pending(objects, pool)
        pending.sink.write(b"c" * PART)
        _wait_idle(pool)  # the upload thread has failed the part
        with pytest.raises(StorageError, match="cannot upload part 1"):
            pending.sink.write(b"d" * PART)
        with pytest.raises(StorageError, match="cannot upload part"):
            pending.commit()
        pending.abort()
        assert objects.uploads_by_id == {}
        assert objects.objects == {}

    def test_abort_discards_buffered_bytes_and_the_upload(self, pool: UploadPool) -> None:
        """abort() after parts went up: the upload is aborted, nothing published, nothing buffered."""
        objects = FakeObjects()
        pending = _pending(objects, pool)
        pending.sink.write(b"e" * 1500)
        pending.abort()
        assert (objects.objects, objects.uploads_by_id, pending.buffered_bytes) == ({}, {}, 0)

    def test_a_failed_abort_is_logged_not_raised(self, pool: UploadPool) -> None:
        """Nothing is visible either way: a failed abort becomes an upload_abort_failed warning."""
        objects = FakeObjects()
        objects.fail_abort = True
        pending = _pending(objects, pool)
        pending.sink.write(b"f" * 1500)
        with structlog.testing.capture_logs() as logs:
            pending.abort()
        assert [entry["event"] for entry in logs] == ["upload_abort_failed"]
        assert objects.objects == {}


class TestUploadPool:
    def test_never_holds_more_parts_than_its_slots(self) -> None:
        """A third submission waits until one of two running uploads ends; bytes in flight are counted."""
        pool = UploadPool(2)
        release = threading.Event()
        futures: list[Future[bool]] = [pool.submit(release.wait, 100) for _ in range(2)]
        assert pool.bytes_in_flight == 200
        third_submitted = threading.Event()

        def submit_third() -> None:
            futures.append(pool.submit(lambda: True, 50))
            third_submitted.set()

        threading.Thread(target=submit_third, daemon=True).start()
        assert not third_submitted.wait(0.2)
        release.set()
        assert third_submitted.wait(5)
        for future in futures:
            future.result(timeout=5)
        _wait_idle(pool)
        assert pool.bytes_in_flight == 0
        pool.close()
