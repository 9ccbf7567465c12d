"""ColumnRegistry: one kind per column for the whole group, the first claim wins."""

from __future__ import annotations

import threading
from pathlib import Path

from consumer.column_registry import ColumnRegistry
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
