"""One segment followed through the --deep read: which of the topic's records its files hold.

Every record in the segment's range must be in exactly one row of its files (a data row, or a
quarantine row), or be a tombstone counted as skipped (or quarantined with reason tombstone).
When the stream leaves the segment, its tallies become findings, its counts are checked against
what the topic and the files hold, and its sampled rows are compared with the records' content.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from consumer.naming import FileKind
from consumer.records import Reason
from consumer.storage import ArchiveStorage
from consumer.verify.content import data_row_problems, quarantine_row_problems, read_rows
from consumer.verify.cursor import FileCursor, open_cursor
from consumer.verify.files import ArchivedFile, Footer
from consumer.verify.model import Finding, FindingKind, TopicRecord
from consumer.verify.segments import Segment

TOMBSTONE = Reason.TOMBSTONE.value
MISPLACED = "records are filed wrongly (a tombstone as a data row, or a value quarantined as a tombstone)"


@dataclass(slots=True)
class Tally:
    """How many offsets had a problem, and the first of them."""

    count: int = 0
    first: int | None = None

    def add(self, offset: int) -> None:
        self.count += 1
        self.first = offset if self.first is None else self.first


@dataclass(slots=True)
class ProbeCounts:
    """What the stream found in one segment's range."""

    present: int = 0  # records the topic has in the range
    tombstones: int = 0  # null values not quarantined: the footer must count them as skipped
    unlocated: int = 0  # non-null records not quarantined, in a segment whose data rows lack `_offset`
    missing: Tally = field(default_factory=Tally)
    duplicated: Tally = field(default_factory=Tally)
    misplaced: Tally = field(default_factory=Tally)


@dataclass(frozen=True, slots=True)
class Sample:
    """A record chosen for a content check, and the row that holds it."""

    record: TopicRecord
    cursor: FileCursor
    row: int


@dataclass(frozen=True, slots=True)
class Hit:
    """A row of a segment's file holding the current record."""

    probe: SegmentProbe
    cursor: FileCursor
    row: int

    @property
    def tombstone(self) -> bool:
        return self.cursor.reason(self.row) == TOMBSTONE


class SegmentProbe:
    """A segment open during the deep read: cursors over its files' offsets and its tallies."""

    def __init__(self, storage: ArchiveStorage, segment: Segment, partial: bool) -> None:
        self.segment = segment
        self.last_offset = segment.first_offset if segment.last_offset is None else segment.last_offset
        self.partial = partial  # part of the range is outside the read: counts cannot be exact
        self.counts = ProbeCounts()
        self.samples: list[Sample] = []
        self.findings: list[Finding] = []
        self.cursors: list[FileCursor] = []
        self.rows_unknown = any(not file.has_offsets for file in segment.data)
        self._storage = storage
        for file in segment.files:
            if file.has_offsets:
                self._open(file.name.kind is FileKind.QUARANTINE, file)

    def _open(self, quarantine: bool, file: ArchivedFile) -> None:
        try:
            self.cursors.append(open_cursor(self._storage, file, with_reasons=quarantine))
        except (OSError, pa.ArrowException) as exc:
            self.rows_unknown = self.rows_unknown or not quarantine
            self.findings.append(self.segment.finding(FindingKind.UNREADABLE, str(exc), file.name.path))

    def hits(self, offset: int) -> list[Hit]:
        """The rows of this segment's files holding the offset (advancing every cursor to it)."""
        return [
            Hit(self, cursor, row)
            for cursor in self.cursors
            if (row := cursor.cursor.match(offset)) is not None
        ]

    def close(self) -> list[Finding]:
        """The segment's findings once the stream has passed its last offset."""
        unmatched = sum(cursor.cursor.finish() for cursor in self.cursors)
        findings = [*self.findings, *self._tally_findings(), *self._sample_findings()]
        footer = self.segment.footer
        if footer is not None and not self.partial:
            findings += self._count_findings(footer, unmatched)
        return findings

    def _tally_findings(self) -> list[Finding]:
        counts, segment = self.counts, self.segment
        described = (
            (FindingKind.MISSING_RECORD, counts.missing, "records of the range are in neither of its files"),
            (FindingKind.DUPLICATE, counts.duplicated, "records are in more than one row of the archive"),
            (FindingKind.CONTENT, counts.misplaced, MISPLACED),
        )
        return [
            segment.finding(kind, f"{tally.count} {text} (the first at offset {tally.first})")
            for kind, tally, text in described
            if tally.count
        ]

    def _count_findings(self, footer: Footer, unmatched: int) -> list[Finding]:
        """Whether the footer's counts explain the records the topic and the files hold."""
        counts = self.counts
        problems: list[tuple[FindingKind, str]] = []
        if counts.tombstones > footer.skipped:
            detail = f"{counts.tombstones} tombstones are in the range, the footer skipped {footer.skipped}"
            problems.append((FindingKind.COUNTS, detail))
        if self.rows_unknown:
            if counts.unlocated > footer.data_records:
                detail = (
                    f"{counts.unlocated} records would be data rows but the segment has {footer.data_records}"
                )
                problems.append((FindingKind.COUNTS, detail))
            return [self.segment.finding(kind, detail) for kind, detail in problems]
        held = counts.present + unmatched  # offsets the topic or the files still hold
        if footer.accounted < held:
            detail = (
                f"the footer accounts for {footer.accounted} records; the topic and the files hold {held}"
            )
            problems.append((FindingKind.COUNTS, detail))
        elif footer.accounted > held:
            detail = (
                f"the footer counts {footer.accounted} records; the topic and the files hold {held} now "
                "(tombstones removed by compaction since they were archived)"
            )
            problems.append((FindingKind.NOTE, detail))
        return [self.segment.finding(kind, detail) for kind, detail in problems]

    def _sample_findings(self) -> list[Finding]:
        findings: list[Finding] = []
        by_file: dict[str, list[Sample]] = {}
        for sample in self.samples:
            by_file.setdefault(sample.cursor.file.name.path, []).append(sample)
        for path, samples in by_file.items():
            try:
                with self._storage.open_input(path) as source:
                    rows = read_rows(source, (sample.row for sample in samples))
            except (OSError, pa.ArrowException) as exc:
                findings.append(self.segment.finding(FindingKind.UNREADABLE, str(exc), path))
                continue
            for sample in samples:
                findings += self._compare(sample, rows[sample.row], path)
        return findings

    def _compare(self, sample: Sample, row: dict[str, object], path: str) -> list[Finding]:
        quarantine = sample.cursor.reasons is not None
        problems = (quarantine_row_problems if quarantine else data_row_problems)(sample.record, row)
        offset = sample.record.offset
        return [
            Finding.of(
                FindingKind.CONTENT, self.segment.tp, f"offset {offset}: {problem}", path, (offset, offset)
            )
            for problem in problems
        ]
