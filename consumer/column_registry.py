"""Column kinds shared by every member of the group and every restart, through the archive itself.

Each typed column of a topic is claimed once, in a small JSON file under `<topic>/_columns/`
(named by a hash of the key; `_`-prefixed folders are skipped by Spark and by `*.parquet` globs).
A claim is created only if absent, atomically, so when members of one group (or one member
before and after a restart) meet the same key with different types, the first to write a file
holding it decides its kind for every file, and the others adopt it: their values that do not
fit go to `_extra`. A column's kind therefore never changes once a file with it exists.

A claim that cannot be read stops the daemon (CorruptFileError, naming the file) rather than
being guessed around. A claim of a kind this version does not know (a newer version wrote it) is
skipped when loading, and stops the daemon only when it would decide a column being written.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from consumer.errors import CorruptFileError
from consumer.naming import FileKind, topic_directory
from consumer.schema import Kind
from consumer.storage import ArchiveStorage

REGISTRY_FOLDER = "_columns"


class ColumnRegistry:
    """Reads and claims the column kinds of topics, in the archive."""

    def __init__(self, storage: ArchiveStorage) -> None:
        self._storage = storage

    def load(self, topic: str) -> dict[str, Kind]:
        """Every claimed column of the topic and its kind (claims of unknown kinds are skipped)."""
        folder = _folder(topic)
        found: dict[str, Kind] = {}
        for name, content in self._storage.read_folder(folder).items():
            column, kind = self._read(f"{folder}/{name}", content)
            if kind in _KNOWN_KINDS:
                found[column] = Kind(kind)
        return found

    def claim(self, topic: str, column: str, kind: Kind) -> Kind:
        """Claim a column's kind; the kind it has now, whoever claimed it first."""
        path = f"{_folder(topic)}/{hashlib.sha256(column.encode()).hexdigest()}.json"
        content = orjson.dumps({"column": column, "kind": kind.value})
        _, held = self._read(path, self._storage.claim(path, content))
        if held not in _KNOWN_KINDS:
            raise CorruptFileError(
                f"column claim {self._storage.describe(path)} holds the kind {held!r}, which this "
                "version does not know: a newer version of the archiver claimed it"
            )
        return Kind(held)

    def _read(self, path: str, content: bytes) -> tuple[str, str]:
        """A claim's column and kind, as written."""
        try:
            return _parse(content)
        except (ValueError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
            raise CorruptFileError(
                f"column claim {self._storage.describe(path)} cannot be read ({exc}); it is left in place. "
                "Restore it, or remove it: the next file holding the column then claims the column's "
                "kind anew (files written before keep the kind they have)"
            ) from exc


_KNOWN_KINDS = frozenset(kind.value for kind in Kind)


def _parse(content: bytes) -> tuple[str, str]:
    claim: Any = orjson.loads(content)
    column, kind = (claim.get("column"), claim.get("kind")) if isinstance(claim, dict) else (None, None)
    if not (isinstance(column, str) and isinstance(kind, str)):
        raise TypeError("not a JSON object with a string column and kind")
    return column, kind


def _folder(topic: str) -> str:
    return f"{topic_directory(FileKind.DATA, topic)}/{REGISTRY_FOLDER}"
