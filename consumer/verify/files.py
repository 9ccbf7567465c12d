"""One finished file checked on its own: its footer is readable and agrees with its name and its rows.

A file is read one at a time: its footer, then only its `_offset` column. The footer values are
kept (they are small) for the segment and coverage checks; the rows are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from consumer.naming import FileKind, SegmentFileName
from consumer.records import TopicPartition
from consumer.recovery import footer_values
from consumer.storage import ArchiveStorage
from consumer.verify.model import Finding, FindingKind

OFFSET_COLUMN = "_offset"
COUNT_KEYS = ("first_offset", "last_offset", "records", "data_records", "quarantined", "skipped")


@dataclass(frozen=True, slots=True)
class Footer:
    """The archiver metadata of a file: the segment's offset range and counts."""

    first_offset: int
    last_offset: int
    records: int
    data_records: int
    quarantined: int
    skipped: int

    @property
    def accounted(self) -> int:
        """Offsets the segment's counts explain: data rows, quarantined and skipped records."""
        return self.data_records + self.quarantined + self.skipped

    @property
    def span(self) -> int:
        return self.last_offset - self.first_offset + 1


@dataclass(frozen=True, slots=True)
class ArchivedFile:
    """A finished file: its name, its footer when readable, whether it has a usable `_offset` column.

    has_offsets: the column exists and its values are ascending inside the footer's range.
    """

    name: SegmentFileName
    footer: Footer | None
    offset_column: bool
    has_offsets: bool

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.name.topic, self.name.partition)


def check_file(storage: ArchiveStorage, name: SegmentFileName) -> tuple[ArchivedFile, list[Finding]]:
    """Read one file's footer and offsets; report it unreadable or inconsistent."""
    tp = TopicPartition(name.topic, name.partition)
    try:
        with storage.open_input(name.path) as source, pq.ParquetFile(source) as parquet:
            metadata = parquet.metadata
            has_column = OFFSET_COLUMN in parquet.schema_arrow.names
            offsets = parquet.read(columns=[OFFSET_COLUMN]).column(0) if has_column else None
    except (OSError, pa.ArrowException) as exc:
        unreadable = _finding(FindingKind.UNREADABLE, tp, name, str(exc))
        return ArchivedFile(name, None, offset_column=False, has_offsets=False), [unreadable]
    values = footer_values(metadata)
    footer, problems = parse_footer(values)
    if footer is None:
        invalid = _finding(FindingKind.FOOTER, tp, name, problems[0])
        return ArchivedFile(name, None, offset_column=has_column, has_offsets=False), [invalid]
    unordered = [] if offsets is None else offset_problems(offsets, footer)
    problems = footer_problems(name, values, footer, metadata.num_rows) + unordered
    findings = [_finding(FindingKind.FOOTER, tp, name, "; ".join(problems), footer)] if problems else []
    return ArchivedFile(name, footer, has_column, has_offsets=has_column and not unordered), findings


def parse_footer(values: dict[str, str]) -> tuple[Footer | None, list[str]]:
    """The footer's offsets and counts, or None and why they are missing or not integers."""
    missing = [key for key in COUNT_KEYS if key not in values]
    if missing:
        return None, [f"footer lacks archiver.{', archiver.'.join(missing)}"]
    try:
        return Footer(*(int(values[key]) for key in COUNT_KEYS)), []
    except ValueError:
        shown = ", ".join(f"{key}={values[key]!r}" for key in COUNT_KEYS)
        return None, [f"footer holds non-integer counts ({shown})"]


def footer_problems(name: SegmentFileName, values: dict[str, str], footer: Footer, rows: int) -> list[str]:
    """Where the footer disagrees with the file's name, kind and row count."""
    expected = {
        "kind": name.kind.value,
        "topic": name.topic,
        "partition": str(name.partition),
        "first_offset": str(name.start_offset),
    }
    problems = [
        f"archiver.{key} is {values.get(key)!r} but the file name says {want!r}"
        for key, want in expected.items()
        if values.get(key) != want
    ]
    if footer.last_offset < footer.first_offset:
        problems.append(f"last_offset {footer.last_offset} < first_offset {footer.first_offset}")
    if footer.records != rows:
        problems.append(f"archiver.records is {footer.records} but the file has {rows} rows")
    own = footer.data_records if name.kind is FileKind.DATA else footer.quarantined
    if own != footer.records:
        problems.append(f"archiver.records is {footer.records} but the segment counts {own} for this file")
    return problems


def offset_problems(offsets: Any, footer: Footer) -> list[str]:
    """Where the `_offset` column is null, not strictly increasing, or outside the footer's range."""
    if len(offsets) == 0:
        return []
    if offsets.null_count:
        return [f"{offsets.null_count} rows have no _offset"]
    bounds = pc.min_max(offsets).as_py()
    problems = []
    if bounds["min"] < footer.first_offset or bounds["max"] > footer.last_offset:
        problems.append(
            f"_offset spans {bounds['min']}-{bounds['max']}, outside the footer's "
            f"{footer.first_offset}-{footer.last_offset}"
        )
    steps = pc.min(pc.pairwise_diff(offsets.combine_chunks())).as_py()
    if steps is not None and steps <= 0:
        problems.append("_offset is not strictly increasing (a record is in the file twice or out of order)")
    return problems


def _finding(
    kind: FindingKind, tp: TopicPartition, name: SegmentFileName, detail: str, footer: Footer | None = None
) -> Finding:
    first = footer.first_offset if footer else name.start_offset
    last = footer.last_offset if footer else None
    return Finding.of(kind, tp, f"{name.kind.value} file: {detail}", name.path, (first, last))
