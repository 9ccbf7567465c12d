"""Rotation policies: given a file's progress and the time, the reason to finish it now, or None.

Pure decisions, no I/O. Size counts the bytes already on disk plus the buffered row group,
estimated at the compression ratio this partition's files have shown so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RotationReason(StrEnum):
    """Why a file was finished; logged with every `file_committed` event."""

    SIZE = "size"
    AGE = "age"
    IDLE = "idle"
    ROW_GROUPS = "row_groups"
    REVOKE = "revoke"
    SHUTDOWN = "shutdown"

    @property
    def by_clock(self) -> bool:
        """Whether the clock, not the data, made the file due: files opened together come due together."""
        return self is RotationReason.AGE or self is RotationReason.IDLE


@dataclass(frozen=True, slots=True)
class FileProgress:
    """What rotation needs to know about an open file."""

    bytes_written: int
    buffered_bytes: int
    compression_ratio: float
    row_groups: int
    opened_at: float
    last_record_at: float
    caught_up: bool  # the client reached the partition's end after its last record

    @property
    def estimated_bytes(self) -> int:
        return self.bytes_written + int(self.buffered_bytes * self.compression_ratio)


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    """Finish a file on size, row-group count, age (since opened) or idleness.

    Idleness is the time since the last record of a partition that the client has read to its end:
    a partition that is behind is not quiet, only waiting for the client to serve it.
    """

    file_max_bytes: int
    file_max_age_s: float
    file_max_idle_s: float
    file_max_row_groups: int

    def reason(self, progress: FileProgress, now: float) -> RotationReason | None:
        if progress.estimated_bytes >= self.file_max_bytes:
            return RotationReason.SIZE
        if progress.row_groups >= self.file_max_row_groups:
            return RotationReason.ROW_GROUPS
        if now - progress.opened_at >= self.file_max_age_s:
            return RotationReason.AGE
        if progress.caught_up and now - progress.last_record_at >= self.file_max_idle_s:
            return RotationReason.IDLE
        return None

    def clock_due_at(self, progress: FileProgress) -> float:
        """When the clock alone makes the file due (by age, or by idleness once caught up): the loop
        waits for records no longer than that. Size and row groups only grow with new records."""
        due_at = progress.opened_at + self.file_max_age_s
        if progress.caught_up:
            due_at = min(due_at, progress.last_record_at + self.file_max_idle_s)
        return due_at
