"""S3Storage against a real S3-compatible server (moto): visibility, abort, no-clobber, listings, retries."""

from __future__ import annotations

import gc
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from consumer.column_registry import ColumnRegistry
from consumer.errors import StorageError, StorageUnreachableError
from consumer.naming import FileKind, SegmentFileName
from consumer.recovery import Recovery
from consumer.schema import Kind
from consumer.storage.s3 import S3Storage
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.s3 import PREFIX, client, incomplete_uploads, object_keys, open_s3_storage

MIB = 1024 * 1024
PART = 5 * MIB
DAY = date(2024, 1, 2)


def _name(offset: int = 0, partition: int = 0, kind: FileKind = FileKind.DATA) -> SegmentFileName:
    return SegmentFileName(kind, "events", partition, offset, DAY)


def _key(name: SegmentFileName) -> str:
    return f"{PREFIX}/{name.path}"


def _payload(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + b"x" * (size % 256)


def _body(endpoint: str, bucket: str, name: SegmentFileName) -> bytes:
    return bytes(client(endpoint).get_object(Bucket=bucket, Key=_key(name))["Body"].read())


def _finished(storage: S3Storage, name: SegmentFileName, payload: bytes) -> int:
    pending = storage.create(name)
    pending.sink.write(payload)
    return pending.commit()


class TestVisibility:
    def test_small_file_is_invisible_until_commit_and_then_exact(self, s3_endpoint: str, bucket: str) -> None:
        """A file smaller than a part is one PUT at commit: nothing before, exactly the bytes after."""
        storage = open_s3_storage(s3_endpoint, bucket)
        name, payload = _name(), _payload(300_000)
        pending = storage.create(name)
        pending.sink.write(payload)
        assert object_keys(s3_endpoint, bucket) == []
        assert incomplete_uploads(s3_endpoint, bucket) == []
        assert pending.commit() == len(payload)
        assert _body(s3_endpoint, bucket, name) == payload
        storage.close()

    def test_large_file_is_an_upload_until_commit(self, s3_endpoint: str, bucket: str) -> None:
        """Past one part, a multipart upload runs but no object is visible; commit completes it."""
        storage = open_s3_storage(s3_endpoint, bucket)
        name, payload = _name(), _payload(2 * PART + 12345)
        pending = storage.create(name)
        for start in range(0, len(payload), 1_000_000):  # written the way the Parquet writer writes
            pending.sink.write(payload[start : start + 1_000_000])
        assert object_keys(s3_endpoint, bucket) == []
        assert incomplete_uploads(s3_endpoint, bucket) == [_key(name)]
        assert pending.commit() == len(payload)
        assert _body(s3_endpoint, bucket, name) == payload
        assert incomplete_uploads(s3_endpoint, bucket) == []
        storage.close()

    def test_abort_leaves_no_object_and_no_upload(self, s3_endpoint: str, bucket: str) -> None:
        """abort() of a file with parts already uploaded aborts its upload: nothing is left."""
        storage = open_s3_storage(s3_endpoint, bucket)
        small, large = storage.create(_name(0)), storage.create(_name(100))
        small.sink.write(b"a few bytes")
        large.sink.write(_payload(PART + 1))
        small.abort()
        large.abort()
        assert object_keys(s3_endpoint, bucket) == []
        assert incomplete_uploads(s3_endpoint, bucket) == []
        storage.close()

    def test_a_dropped_file_is_never_published(self, s3_endpoint: str, bucket: str) -> None:
        """A pending file that is neither committed nor aborted (a crash) publishes nothing."""
        storage = open_s3_storage(s3_endpoint, bucket)
        pending = storage.create(_name())
        pending.sink.write(_payload(PART + 10))
        del pending
        gc.collect()
        storage.close()
        assert object_keys(s3_endpoint, bucket) == []
        assert incomplete_uploads(s3_endpoint, bucket) == [_key(_name())]

    def test_parquet_written_through_the_sink_reads_back(self, s3_endpoint: str, bucket: str) -> None:
        """The Parquet writer writes through the sink; pyarrow's S3 filesystem reads the file back."""
        storage = open_s3_storage(s3_endpoint, bucket)
        name = _name()
        pending = storage.create(name)
        table = pa.table({"_offset": list(range(1000))})
        with pq.ParquetWriter(pending.sink, table.schema) as writer:
            writer.write_table(table)
        pending.commit()
        assert storage.read_metadata(name.path).num_rows == 1000
        with storage.open_input(name.path) as source:
            assert pq.read_table(source).equals(table)
        storage.close()


class TestNoClobber:
    @pytest.mark.parametrize("conditional", [True, False])
    @pytest.mark.parametrize("size", [1000, PART + 1000])
    def test_commit_never_replaces_a_finished_object(
        self, s3_endpoint: str, bucket: str, conditional: bool, size: int
    ) -> None:
        """Publishing over a finished object is refused, with or without If-None-Match; the original stays."""
        storage = open_s3_storage(s3_endpoint, bucket, conditional_writes=conditional)
        name = _name()
        _finished(storage, name, b"the original")
        pending = storage.create(name)
        pending.sink.write(_payload(size))
        with pytest.raises(StorageError, match="refusing to replace the finished object"):
            pending.commit()
        pending.abort()
        assert _body(s3_endpoint, bucket, name) == b"the original"
        assert incomplete_uploads(s3_endpoint, bucket) == []
        storage.close()


class TestColumnClaims:
    @pytest.mark.parametrize("conditional", [True, False])
    def test_first_claim_wins_for_every_member(
        self, s3_endpoint: str, bucket: str, conditional: bool
    ) -> None:
        """Two members claiming one column through the bucket agree on the first kind, then reload it."""
        first = open_s3_storage(s3_endpoint, bucket, conditional_writes=conditional)
        second = open_s3_storage(s3_endpoint, bucket, conditional_writes=conditional)
        assert ColumnRegistry(first).claim("events", "x", Kind.INT64) is Kind.INT64
        assert ColumnRegistry(second).claim("events", "x", Kind.STRING) is Kind.INT64
        ColumnRegistry(second).claim("events", "y", Kind.JSON)
        assert ColumnRegistry(first).load("events") == {"x": Kind.INT64, "y": Kind.JSON}
        assert ColumnRegistry(first).load("other") == {}
        first.close()
        second.close()


class TestListing:
    def test_scan_lists_finished_objects_and_incomplete_uploads(self, s3_endpoint: str, bucket: str) -> None:
        """Finished objects by name; an unfinished upload under its partition, as its hidden name."""
        storage = open_s3_storage(s3_endpoint, bucket)
        finished = [_name(0, 0), _name(5, 1)]
        for name in [*finished, _name(7, 0, FileKind.QUARANTINE)]:
            _finished(storage, name, b"bytes")
        stale = storage.create(_name(9, 2))
        stale.sink.write(_payload(PART))
        s3 = client(s3_endpoint)
        for stray in (
            "events/date=2024-01-02/notes.txt",
            "events/stray.parquet",
            "events2/date=2024-01-02/x",
        ):
            s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{stray}", Body=b"?")
        listing = storage.scan(FileKind.DATA, "events")
        assert sorted(listing.finished, key=lambda n: n.path) == finished
        assert listing.in_progress == [(2, _name(9, 2).in_progress_path)]
        assert storage.scan(FileKind.QUARANTINE, "events").finished == [_name(7, 0, FileKind.QUARANTINE)]
        storage.close()

    def test_recovery_aborts_a_crashed_upload_and_resumes_after_the_archive(
        self, s3_endpoint: str, bucket: str
    ) -> None:
        """A crash's incomplete upload is aborted on assignment; the partition resumes after its footers."""
        storage = open_s3_storage(s3_endpoint, bucket)
        name = _name(0)
        pending = storage.create(name)
        table = pa.table({"_offset": list(range(10))})
        with pq.ParquetWriter(pending.sink, table.schema) as writer:
            writer.write_table(table)
            writer.add_key_value_metadata(
                {"archiver.last_offset": "9", "archiver.data_records": "10", "archiver.schema": "{}"}
            )
        pending.commit()
        crashed = storage.create(_name(10))
        crashed.sink.write(_payload(PART))
        found = Recovery(storage, ColumnRegistry(storage)).recover("events", [0])
        assert found[0].resume_offset == 10
        assert incomplete_uploads(s3_endpoint, bucket) == []
        storage.close()

    def test_check_writable_leaves_nothing(self, s3_endpoint: str, bucket: str) -> None:
        """The start-up probe writes, lists and deletes; the bucket is as it was."""
        storage = open_s3_storage(s3_endpoint, bucket)
        storage.check_writable()
        assert object_keys(s3_endpoint, bucket) == []
        storage.close()

    def test_missing_bucket_is_a_clear_storage_error(self, s3_endpoint: str) -> None:
        """A bucket that does not exist fails the start-up probe with the object's location."""
        storage = open_s3_storage(s3_endpoint, "no-such-bucket")
        with pytest.raises(StorageError, match=r"s3://no-such-bucket/archive/\.write-probe.*NoSuchBucket"):
            storage.check_writable()
        storage.close()


class TestFaults:
    def test_lost_answers_are_recognised_as_our_own_publication(self, s3_endpoint: str, bucket: str) -> None:
        """A PUT and a CompleteMultipartUpload whose answers are lost are retried and still succeed once."""
        with FaultProxy(s3_endpoint) as proxy:
            storage = open_s3_storage(proxy.endpoint, bucket)
            for name, size in ((_name(0), 1000), (_name(100), PART + 1000)):
                pending = storage.create(name)
                payload = _payload(size)
                pending.sink.write(payload)
                proxy.once(Fault.DROP_RESPONSE, "PUT" if size < PART else "POST")
                assert pending.commit() == size
                assert _body(s3_endpoint, bucket, name) == payload
            storage.close()
        assert proxy.injected[Fault.DROP_RESPONSE] == 2
        assert incomplete_uploads(s3_endpoint, bucket) == []

    def test_a_retried_upload_start_leaves_no_stray_upload(self, s3_endpoint: str, bucket: str) -> None:
        """CreateMultipartUpload carried out but its answer lost: the retry's twin is aborted at commit."""
        with FaultProxy(s3_endpoint) as proxy:
            storage = open_s3_storage(proxy.endpoint, bucket)
            pending = storage.create(_name())
            proxy.once(Fault.DROP_RESPONSE, "POST")
            pending.sink.write(_payload(PART + 1))
            pending.commit()
            storage.close()
        assert incomplete_uploads(s3_endpoint, bucket) == []
        assert object_keys(s3_endpoint, bucket) == [_key(_name())]

    def test_transient_errors_are_retried(self, s3_endpoint: str, bucket: str) -> None:
        """500, 503, dropped connections and timeouts on a part and on the commit: retried, file intact."""
        with FaultProxy(s3_endpoint, hold_s=1.5) as proxy:
            storage = open_s3_storage(proxy.endpoint, bucket, request_timeout_s=1.0)
            name, payload = _name(), _payload(PART + 777)
            pending = storage.create(name)
            for fault in (Fault.ERROR, Fault.SLOW_DOWN, Fault.DROP_REQUEST, Fault.TIMEOUT):
                proxy.once(fault, "PUT")
            pending.sink.write(payload)
            pending.commit()
            storage.close()
        assert sum(proxy.injected.values()) == 4
        assert _body(s3_endpoint, bucket, name) == payload

    def test_exhausted_retries_raise_a_storage_error_naming_the_object(
        self, s3_endpoint: str, bucket: str
    ) -> None:
        """When the server keeps failing, commit raises StorageError after the bounded attempts."""
        with FaultProxy(s3_endpoint) as proxy:
            storage = open_s3_storage(proxy.endpoint, bucket, retry_max_attempts=3)
            pending = storage.create(_name())
            pending.sink.write(b"data")
            proxy.fail_all = True
            with pytest.raises(StorageError, match=r"cannot write s3://.*events\+0\+0+\.parquet: SlowDown"):
                pending.commit()
            pending.abort()
            storage.close()
        assert proxy.injected[Fault.SLOW_DOWN] == 3
        assert object_keys(s3_endpoint, bucket) == []

    def test_a_footer_the_server_will_not_serve_is_not_called_corrupt(
        self, s3_endpoint: str, bucket: str
    ) -> None:
        """A footer the server will not serve raises StorageUnreachableError in recovery, not corrupt."""
        with FaultProxy(s3_endpoint) as proxy:
            storage = open_s3_storage(proxy.endpoint, bucket, retry_max_attempts=2)
            _finished(storage, _name(0), b"not even parquet")
            for _ in range(6):
                proxy.once(Fault.SLOW_DOWN, "HEAD")  # pyarrow opens a file with a HEAD
            with pytest.raises(StorageUnreachableError, match=r"cannot read s3://.*events\+0\+0+\.parquet"):
                Recovery(storage, ColumnRegistry(storage)).recover("events", [0])
            storage.close()
        assert proxy.injected[Fault.SLOW_DOWN] >= 2


def test_buffered_bytes_count_parts_in_memory(s3_endpoint: str, bucket: str) -> None:
    """Bytes waiting in open files' parts are reported, and drop to nothing once files are finished."""
    storage = open_s3_storage(s3_endpoint, bucket)
    first, second = storage.create(_name(0)), storage.create(_name(1))
    first.sink.write(b"x" * 3_000_000)
    second.sink.write(b"y" * 1_000_000)
    assert storage.buffered_bytes() == 4_000_000
    first.commit()
    second.abort()
    assert storage.buffered_bytes() == 0
    storage.close()
