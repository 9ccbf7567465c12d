"""ColumnRegistry: one kind per column for the whole group, the first claim wins."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from consumer.column_registry import ColumnRegistry
from consumer.errors import CorruptFileError
from consumer.schema import Kind
from consumer.storage import LocalStorage


class TestColumnRegistry:
    def test_first_claim_wins_for_everyone(self, tmp_path: Path) -> None:
        """A second claim of the same column with another kind gets the first kind back."""
        first, second = ColumnRegistry(LocalStorage(tmp_path)), ColumnRegistry(LocalStorage(tmp_path))
        assert first.claim("events", "x", Kind.INT64) is Kind.INT64
        assert second.claim("events", "x", Kind.STRING) is Kind.INT64

    def test_load_returns_every_claim_of_the_topic(self, tmp_path: Path) -> None:
        """load() gives each claimed column of a topic its kind; other topics are separate."""
        registry = ColumnRegistry(LocalStorage(tmp_path))
        registry.claim("events", "a/b c", Kind.JSON)
        registry.claim("events", "ünïcode", Kind.BOOL)
        registry.claim("other", "a/b c", Kind.STRING)
        assert registry.load("events") == {"a/b c": Kind.JSON, "ünïcode": Kind.BOOL}
        assert registry.load("missing") == {}

    def test_concurrent_claims_agree(self, tmp_path: Path) -> None:
        """Many members claiming one column at once all end with the same kind."""
        kinds = [Kind.INT64, Kind.STRING, Kind.FLOAT64, Kind.BOOL] * 4
        results: list[Kind] = []
        barrier = threading.Barrier(len(kinds))

        def claim(kind: Kind) -> None:
            registry = ColumnRegistry(LocalStorage(tmp_path))
            barrier.wait()
            results.append(registry.claim("events", "x", kind))

        threads = [threading.Thread(target=claim, args=(kind,)) for kind in kinds]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(results)) == 1
        assert ColumnRegistry(LocalStorage(tmp_path)).load("events") == {"x": results[0]}
        assert not list((tmp_path / "events" / "_columns").glob(".*")), "a temporary claim file was left"


def _plant_claim(root: Path, column: str, content: bytes) -> Path:
    """A claim file where the registry keeps the claim of `column` in topic "events"."""
    folder = root / "events" / "_columns"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(column.encode()).hexdigest()}.json"
    path.write_bytes(content)
    return path


class TestDamagedClaims:
    @pytest.mark.parametrize(
        "content",
        [b'{"column": "x", "kin', b"[1, 2]", b'{"kind": "int64"}', b'{"column": "x", "kind": 5}'],
        ids=["truncated", "not-an-object", "no-column", "kind-not-a-string"],
    )
    def test_an_unreadable_claim_stops_with_the_file_named_and_left_in_place(
        self, tmp_path: Path, content: bytes
    ) -> None:
        """Loading and claiming both stop on a damaged claim, naming its file, which stays as it was."""
        path = _plant_claim(tmp_path, "x", content)
        registry = ColumnRegistry(LocalStorage(tmp_path))
        with pytest.raises(CorruptFileError, match="Restore it, or remove it") as raised:
            registry.load("events")
        assert str(path) in str(raised.value)
        with pytest.raises(CorruptFileError, match="cannot be read"):
            registry.claim("events", "x", Kind.INT64)
        assert path.read_bytes() == content

    def test_a_claim_of_an_unknown_kind_is_skipped_but_never_overridden(self, tmp_path: Path) -> None:
        """A kind from a newer version: other columns load; claiming that column stops instead of
        deciding another kind for it."""
        _plant_claim(tmp_path, "x", b'{"column": "x", "kind": "decimal128"}')
        registry = ColumnRegistry(LocalStorage(tmp_path))
        registry.claim("events", "y", Kind.BOOL)
        assert registry.load("events") == {"y": Kind.BOOL}
        with pytest.raises(CorruptFileError, match="'decimal128', which this version does not know"):
            registry.claim("events", "x", Kind.INT64)
