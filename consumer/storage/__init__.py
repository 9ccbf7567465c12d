"""Where the archive lives: a local folder or an S3 bucket, behind one protocol (see base.py).

open_storage() chooses by `output.root`: `s3://bucket/prefix` is an S3Storage, anything else a
local folder. The S3 clients are imported only for an S3 root.
"""

from __future__ import annotations

from pathlib import Path

from consumer.config import OutputSettings
from consumer.storage.base import ArchiveStorage, PendingFile, Sink, TopicListing
from consumer.storage.local import LocalPendingFile, LocalStorage

__all__ = [
    "ArchiveStorage",
    "LocalPendingFile",
    "LocalStorage",
    "PendingFile",
    "Sink",
    "TopicListing",
    "open_storage",
]


def open_storage(output: OutputSettings) -> ArchiveStorage:
    """The storage of the configured output root."""
    s3_root = output.s3_root
    if s3_root is None:
        return LocalStorage(Path(output.root))
    from consumer.storage.s3 import S3Storage  # noqa: PLC0415 - boto3 only for an S3 root

    return S3Storage(s3_root, output.s3)
