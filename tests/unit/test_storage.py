"""Local storage (hidden pending files, listings, the writability check), and storage chosen by root."""

from __future__ import annotations

import multiprocessing
import re
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from consumer.config import OutputSettings, S3Settings
from consumer.errors import StorageError
from consumer.naming import FileKind, SegmentFileName
from consumer.storage import LocalStorage, open_storage
from consumer.storage.local import probe_name
from consumer.storage.s3 import S3Storage

DAY = date(2024, 1, 2)
PAYLOAD = b"parquet bytes, or any bytes"


def _name(
    offset: int = 0, partition: int = 0, kind: FileKind = FileKind.DATA, day: date = DAY
) -> SegmentFileName:
    return SegmentFileName(kind, "events", partition, offset, day)


def _probe_repeatedly(root: Path, times: int = 500) -> list[str]:
    """The errors of `times` writability checks of root (run in a process of its own)."""
    failures: list[str] = []
    for _ in range(times):
        try:
            LocalStorage(root).check_writable()
        except StorageError as exc:
            failures.append(str(exc))
    return failures


def _finished(storage: LocalStorage, name: SegmentFileName, payload: bytes = PAYLOAD) -> None:
    pending = storage.create(name)
    pending.sink.write(payload)
    pending.commit()


class TestPendingFile:
    def test_invisible_until_commit(self, tmp_path: Path) -> None:
        """While written, the file exists only under its hidden in-progress name."""
        name = _name()
        pending = LocalStorage(tmp_path).create(name)
        pending.sink.write(PAYLOAD)
        assert not (tmp_path / name.path).exists()
        assert (tmp_path / name.in_progress_path).exists()
        pending.abort()

    def test_commit_publishes_the_written_bytes(self, tmp_path: Path) -> None:
        """commit() makes the file visible under its final name with exactly the bytes written."""
        name = _name()
        pending = LocalStorage(tmp_path).create(name)
        pending.sink.write(PAYLOAD)
        assert pending.commit() == len(PAYLOAD)
        assert (tmp_path / name.path).read_bytes() == PAYLOAD
        assert not (tmp_path / name.in_progress_path).exists()

    def test_abort_leaves_nothing(self, tmp_path: Path) -> None:
        """abort() removes the in-progress file and publishes nothing."""
        name = _name()
        pending = LocalStorage(tmp_path).create(name)
        pending.sink.write(PAYLOAD)
        pending.abort()
        assert not (tmp_path / name.path).exists()
        assert not (tmp_path / name.in_progress_path).exists()

    def test_commit_never_replaces_a_finished_file(self, tmp_path: Path) -> None:
        """Committing over an existing finished file raises StorageError and leaves that file as it was."""
        storage = LocalStorage(tmp_path)
        name = _name()
        _finished(storage, name, b"the original")
        pending = storage.create(name)
        pending.sink.write(b"a newcomer")
        with pytest.raises(StorageError, match="refusing to replace"):
            pending.commit()
        assert (tmp_path / name.path).read_bytes() == b"the original"

    def test_creates_missing_folders(self, tmp_path: Path) -> None:
        """Creating a file under a missing root, topic and date folder creates them."""
        root = tmp_path / "root"
        name = _name(kind=FileKind.QUARANTINE)
        _finished(LocalStorage(root), name)
        assert (root / name.path).read_bytes() == PAYLOAD


class TestScan:
    def test_lists_finished_files_of_the_topic_and_kind(self, tmp_path: Path) -> None:
        """scan() lists each finished file of the kind, across partitions and days."""
        storage = LocalStorage(tmp_path)
        data = [_name(0, 0), _name(10, 0, day=date(2024, 1, 3)), _name(5, 1)]
        for name in [*data, _name(7, 0, FileKind.QUARANTINE)]:
            _finished(storage, name)
        listing = storage.scan(FileKind.DATA, "events")
        assert sorted(listing.finished, key=lambda n: n.path) == sorted(data, key=lambda n: n.path)
        assert listing.in_progress == []

    def test_lists_quarantine_files_separately(self, tmp_path: Path) -> None:
        """Quarantine files are listed by a quarantine scan only."""
        storage = LocalStorage(tmp_path)
        _finished(storage, _name(0, 0))
        quarantined = _name(7, 2, FileKind.QUARANTINE)
        _finished(storage, quarantined)
        assert storage.scan(FileKind.QUARANTINE, "events").finished == [quarantined]

    def test_lists_in_progress_files_with_their_partition(self, tmp_path: Path) -> None:
        """In-progress files are listed as (partition, path relative to the root)."""
        storage = LocalStorage(tmp_path)
        name = _name(3, 4)
        pending = storage.create(name)
        listing = storage.scan(FileKind.DATA, "events")
        assert listing.in_progress == [(4, name.in_progress_path)]
        assert listing.finished == []
        pending.abort()

    def test_ignores_unrelated_files(self, tmp_path: Path) -> None:
        """Stray files, folders that are not days, and names the archiver does not write are skipped."""
        storage = LocalStorage(tmp_path)
        kept = _name(0, 0)
        _finished(storage, kept)
        day_dir = tmp_path / "events" / "date=2024-01-02"
        (day_dir / "notes.txt").write_text("hello")
        (day_dir / "events+0+42.parquet").write_bytes(PAYLOAD)
        (day_dir / ".events+0+42.parquet.inprogress").write_bytes(PAYLOAD)
        (tmp_path / "events" / kept.file_name).write_bytes(PAYLOAD)  # not in a day folder
        (tmp_path / "events" / "date=garbage").mkdir()
        (tmp_path / "events" / "date=garbage" / kept.file_name).write_bytes(PAYLOAD)
        (tmp_path / "events" / "date=2024-01-05").write_bytes(PAYLOAD)  # a file, not a folder
        listing = storage.scan(FileKind.DATA, "events")
        assert listing.finished == [kept]
        assert listing.in_progress == []

    def test_ignores_files_named_for_another_topic(self, tmp_path: Path) -> None:
        """A file named for another topic inside this topic's folder is not listed as one of its files."""
        storage = LocalStorage(tmp_path)
        kept = _name(0, 0)
        _finished(storage, kept)
        stray = SegmentFileName(FileKind.DATA, "other", 0, 99, DAY)
        (tmp_path / kept.directory / stray.file_name).write_bytes(PAYLOAD)
        assert storage.scan(FileKind.DATA, "events").finished == [kept]

    def test_does_not_list_other_topics(self, tmp_path: Path) -> None:
        """A topic whose name extends another's is scanned separately."""
        storage = LocalStorage(tmp_path)
        _finished(storage, SegmentFileName(FileKind.DATA, "events2", 0, 0, DAY))
        assert storage.scan(FileKind.DATA, "events").finished == []

    def test_missing_topic_is_empty(self, tmp_path: Path) -> None:
        """A topic with no folder yet has no files."""
        listing = LocalStorage(tmp_path).scan(FileKind.QUARANTINE, "events")
        assert (listing.finished, listing.in_progress) == ([], [])


class TestCheckWritable:
    def test_creates_a_missing_root(self, tmp_path: Path) -> None:
        """A missing root (and its parents) is created, and the probe file is removed."""
        root = tmp_path / "a" / "b"
        LocalStorage(root).check_writable()
        assert root.is_dir()
        assert list(root.iterdir()) == []

    def test_root_that_is_a_file(self, tmp_path: Path) -> None:
        """A file where the root folder should be raises StorageError naming the root."""
        root = tmp_path / "root"
        root.write_text("not a folder")
        with pytest.raises(StorageError, match=re.escape(str(root))):
            LocalStorage(root).check_writable()

    def test_root_below_a_file(self, tmp_path: Path) -> None:
        """A root that cannot be created (its parent is a file) raises StorageError naming the root."""
        (tmp_path / "blocker").write_text("not a folder")
        root = tmp_path / "blocker" / "root"
        with pytest.raises(StorageError, match=re.escape(str(root))):
            LocalStorage(root).check_writable()

    def test_root_where_no_file_can_be_written(self, tmp_path: Path) -> None:
        """A root where the probe file cannot be written (even as root) raises StorageError naming it."""
        (tmp_path / probe_name()).mkdir()  # the probe's name is taken by a folder: the write fails
        with pytest.raises(StorageError, match=re.escape(str(tmp_path))):
            LocalStorage(tmp_path).check_writable()

    def test_members_sharing_a_root_probe_it_at_the_same_time(self, tmp_path: Path) -> None:
        """Daemons of one group starting together on one root each write and remove their own probe."""
        context = multiprocessing.get_context("spawn")
        with context.Pool(2) as pool:
            failures = pool.map(_probe_repeatedly, [tmp_path / "archive"] * 2)
        assert failures == [[], []]
        assert list((tmp_path / "archive").iterdir()) == []


class TestFiles:
    def test_delete_removes_a_file(self, tmp_path: Path) -> None:
        """delete() removes the file at a relative path."""
        storage = LocalStorage(tmp_path)
        name = _name()
        _finished(storage, name)
        storage.delete(name.path)
        assert not (tmp_path / name.path).exists()
        assert storage.scan(FileKind.DATA, "events").finished == []

    def test_read_metadata_of_a_parquet_file(self, tmp_path: Path) -> None:
        """read_metadata() returns a finished Parquet file's footer."""
        storage = LocalStorage(tmp_path)
        name = _name()
        pending = storage.create(name)
        table = pa.table({"id": [1, 2]}).replace_schema_metadata({"k": "v"})
        pq.write_table(table, pending.sink)
        pending.commit()
        metadata = storage.read_metadata(name.path)
        assert metadata.num_rows == 2
        assert metadata.metadata[b"k"] == b"v"

    def test_read_metadata_of_a_missing_file(self, tmp_path: Path) -> None:
        """Reading a missing file's footer raises StorageError naming the path."""
        with pytest.raises(StorageError, match=r"missing\.parquet"):
            LocalStorage(tmp_path).read_metadata("events/missing.parquet")

    def test_describe_gives_the_full_location(self, tmp_path: Path) -> None:
        """describe() joins the root and the relative path."""
        assert LocalStorage(tmp_path).describe("events/x.parquet") == str(tmp_path / "events" / "x.parquet")


class TestOpenStorage:
    def test_a_path_is_a_local_folder(self, tmp_path: Path) -> None:
        """A local root opens a LocalStorage on that folder."""
        storage = open_storage(OutputSettings(root=str(tmp_path)))
        assert isinstance(storage, LocalStorage)
        assert storage.describe("events/x.parquet") == str(tmp_path / "events" / "x.parquet")

    def test_an_s3_uri_is_a_bucket(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An s3:// root opens an S3Storage (no request is made until it is used)."""
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        s3 = S3Settings(endpoint_override="127.0.0.1:9", scheme="http", region="us-east-1")
        storage = open_storage(OutputSettings(root="s3://bucket/some/prefix", s3=s3))
        assert isinstance(storage, S3Storage)
        assert storage.describe("events/x.parquet") == "s3://bucket/some/prefix/events/x.parquet"
        assert storage.buffered_bytes() == 0
        storage.close()
