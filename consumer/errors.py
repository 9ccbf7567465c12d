"""The error hierarchy: what stops the daemon, with which exit code, and what is only retried.

Each external system (Kafka, storage) translates its own exceptions into these at one boundary,
so the loop decides by type alone: a FatalError aborts open files and exits non-zero.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; systemd restarts on anything but OK and CONFIG."""

    OK = 0
    FATAL = 1
    USAGE = 2
    SHUTDOWN_ABORTED = 3
    CONFIG = 78  # EX_CONFIG from sysexits.h


class ArchiverError(Exception):
    """Base of every error the archiver raises on purpose."""


class ConfigError(ArchiverError):
    """The configuration is invalid; raised before anything connects."""


class FatalError(ArchiverError):
    """The daemon cannot go on: abort in-progress files, commit nothing more, exit non-zero."""


class KafkaUnavailableError(FatalError):
    """The brokers could not be reached within the configured start-up time."""


class KafkaFatalError(FatalError):
    """The Kafka client reported an error it cannot recover from."""


class StorageError(FatalError):
    """Writing, finishing or listing output files failed (disk full, permission denied, ...)."""


class StorageUnreachableError(StorageError):
    """A file could not be read because the storage did not answer (after retries), not for its content."""


class CorruptFileError(FatalError):
    """A finished file cannot be read back; it is reported, never overwritten."""


class CommitRefusedError(ArchiverError):
    """Kafka did not accept an offset commit. The data is durable, so this is logged and retried later."""


class ShutdownAbortedError(ArchiverError):
    """A second signal or the shutdown deadline cut the drain short."""
