"""Column kinds shared by every member of the group and every restart, through the archive itself.

Each typed column of a topic is claimed once, in a small JSON file under `<topic>/_columns/`
(named by a hash of the key; `_`-prefixed folders are skipped by Spark and by `*.parquet` globs).
A claim is created only if absent, atomically, so when members of one group (or one member
before and after a restart) meet the same key with different types, the first to write a file
holding it decides its kind for every file, and the others adopt it: their values that do not
fit go to `_extra`. A column's kind therefore never changes once a file with it exists.
"""

from __future__ import annotations

import hashlib

import orjson

from consumer.naming import FileKind, topic_directory
from consumer.schema import Kind
from consumer.storage import ArchiveStorage

REGISTRY_FOLDER = "_columns"


class ColumnRegistry:
    """Reads and claims the column kinds of topics, in the archive."""

    def __init__(self, storage: ArchiveStorage) -> None:
        self._storage = storage

    def load(self, topic: str) -> dict[str, Kind]:
        """Every claimed column of the topic and its kind."""
        known = {kind.value for kind in Kind}
        claims = (orjson.loads(content) for content in self._storage.read_folder(_folder(topic)))
        return {claim["column"]: Kind(claim["kind"]) for claim in claims if claim.get("kind") in known}

    def claim(self, topic: str, column: str, kind: Kind) -> Kind:
        """Claim a column's kind; the kind it has now, whoever claimed it first."""
        name = hashlib.sha256(column.encode()).hexdigest()
        content = orjson.dumps({"column": column, "kind": kind.value})
        held = orjson.loads(self._storage.claim(f"{_folder(topic)}/{name}.json", content))
        return Kind(held["kind"])


def _folder(topic: str) -> str:
    return f"{topic_directory(FileKind.DATA, topic)}/{REGISTRY_FOLDER}"
