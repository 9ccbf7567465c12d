"""Output paths and their parsing: the archive's layout, in one place.

Data:        <topic>/date=YYYY-MM-DD/<topic>+<partition>+<start offset, 20 digits>.parquet
Quarantine:  _quarantine/<topic>/date=YYYY-MM-DD/<same file name>
In progress: the same folder, as .<file name>.inprogress (hidden from readers and globs)

The day comes from the file's first record, so a late record never forces a new file: it joins
the open one.

Paths are relative to the output root and always use '/'. The start offset is the first offset
of the segment the file belongs to; a segment's data file and quarantine file share the name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

QUARANTINE_DIR = "_quarantine"
SUFFIX = ".parquet"
IN_PROGRESS_SUFFIX = ".inprogress"
OFFSET_DIGITS = 20
_FILE_NAME = re.compile(r"(?P<topic>[A-Za-z0-9._-]+)\+(?P<partition>0|[1-9]\d*)\+(?P<offset>\d{20})\.parquet")


class FileKind(StrEnum):
    """What a segment file holds."""

    DATA = "data"
    QUARANTINE = "quarantine"


@dataclass(frozen=True, slots=True)
class SegmentFileName:
    """The identity of one output file."""

    kind: FileKind
    topic: str
    partition: int
    start_offset: int
    day: date

    @property
    def file_name(self) -> str:
        return f"{self.topic}+{self.partition}+{self.start_offset:0{OFFSET_DIGITS}d}{SUFFIX}"

    @property
    def directory(self) -> str:
        return f"{topic_directory(self.kind, self.topic)}/date={self.day.isoformat()}"

    @property
    def path(self) -> str:
        return f"{self.directory}/{self.file_name}"

    @property
    def in_progress_path(self) -> str:
        return f"{self.directory}/.{self.file_name}{IN_PROGRESS_SUFFIX}"


def topic_directory(kind: FileKind, topic: str) -> str:
    """The folder holding every date folder of a topic's files of this kind."""
    return topic if kind is FileKind.DATA else f"{QUARANTINE_DIR}/{topic}"


def parse_file_name(name: str) -> tuple[str, int, int] | None:
    """(topic, partition, start offset) of a finished file's base name, or None if it is not one."""
    match = _FILE_NAME.fullmatch(name)
    if match is None:
        return None
    return match["topic"], int(match["partition"]), int(match["offset"])


def parse_in_progress_name(name: str) -> tuple[str, int, int] | None:
    """(topic, partition, start offset) of an in-progress file's base name, or None."""
    if not (name.startswith(".") and name.endswith(IN_PROGRESS_SUFFIX)):
        return None
    return parse_file_name(name[1 : -len(IN_PROGRESS_SUFFIX)])


def parse_date_directory(name: str) -> date | None:
    """The day of a `date=YYYY-MM-DD` folder name, or None."""
    if not name.startswith("date="):
        return None
    try:
        return date.fromisoformat(name.removeprefix("date="))
    except ValueError:
        return None


class DayRule:
    """The day a file is filed under: its first record's Kafka timestamp, or a configured JSON field."""

    def __init__(self, field: str | None = None, unit: str = "ms") -> None:
        self._field = field
        self._unit = unit

    def day(self, row: dict[str, Any] | None, timestamp_ms: int | None, now_s: float) -> date:
        if self._field is not None and row is not None:
            found = _field_day(row.get(self._field), self._unit)
            if found is not None:
                return found
        if timestamp_ms is not None and timestamp_ms >= 0:
            try:
                return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).date()
            except (ValueError, OverflowError, OSError):
                pass  # a timestamp past year 9999: the wall clock decides
        return datetime.fromtimestamp(now_s, tz=UTC).date()


_UNIT_SECONDS = {"s": 1, "ms": 1_000, "us": 1_000_000}


def _field_day(value: Any, unit: str) -> date | None:
    try:
        if unit == "iso8601":
            if not isinstance(value, str):
                return None
            parsed = datetime.fromisoformat(value)
            return (parsed if parsed.tzinfo is None else parsed.astimezone(UTC)).date()
        if type(value) not in (int, float):
            return None
        return datetime.fromtimestamp(value / _UNIT_SECONDS[unit], tz=UTC).date()
    except (ValueError, OverflowError, OSError):
        return None
