"""Files grouped into segments, and the checks that need a whole segment or a partition's segments.

A segment is the data file and/or quarantine file sharing a start offset (their names). Its
range [first_offset, last_offset] comes from the footers, which must agree. A segment covers its
range only if it is complete: its data file is there and readable, or its footer says it had no
data rows. Two segments whose ranges overlap hold some offsets twice: a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from consumer.naming import FileKind
from consumer.records import TopicPartition
from consumer.verify.files import ArchivedFile, Footer
from consumer.verify.model import Finding, FindingKind


@dataclass(slots=True)
class Segment:
    """The finished files of one partition named by one start offset."""

    tp: TopicPartition
    start_offset: int
    data: list[ArchivedFile] = field(default_factory=list)
    quarantine: list[ArchivedFile] = field(default_factory=list)

    @property
    def files(self) -> list[ArchivedFile]:
        return [*self.data, *self.quarantine]

    @property
    def footer(self) -> Footer | None:
        """The first readable footer, the data file's first."""
        return next((file.footer for file in self.files if file.footer is not None), None)

    @property
    def complete(self) -> bool:
        """Whether the segment's records are all in readable files (so it covers its range)."""
        footer = self.footer
        if footer is None:
            return False
        return footer.data_records == 0 or any(file.footer is not None for file in self.data)

    @property
    def first_offset(self) -> int:
        return self.footer.first_offset if self.footer else self.start_offset

    @property
    def last_offset(self) -> int | None:
        return self.footer.last_offset if self.footer else None

    @property
    def path(self) -> str:
        return self.files[0].name.path

    def finding(self, kind: FindingKind, detail: str, path: str | None = None) -> Finding:
        return Finding.of(kind, self.tp, detail, path or self.path, (self.first_offset, self.last_offset))


def group_segments(files: Iterable[ArchivedFile]) -> list[Segment]:
    """One partition's files as segments, ordered by first offset."""
    segments: dict[int, Segment] = {}
    for file in files:
        segment = segments.setdefault(file.name.start_offset, Segment(file.tp, file.name.start_offset))
        (segment.data if file.name.kind is FileKind.DATA else segment.quarantine).append(file)
    return sorted(segments.values(), key=lambda segment: (segment.first_offset, segment.start_offset))


def check_segment(segment: Segment) -> list[Finding]:
    """Files of a kind named twice, footers that disagree, a file the counts expect, counts too large."""
    findings = [
        segment.finding(
            FindingKind.DUPLICATE,
            f"{len(same)} {kind} files share the start offset: " + ", ".join(file.name.path for file in same),
        )
        for kind, same in (("data", segment.data), ("quarantine", segment.quarantine))
        if len(same) > 1
    ]
    footer = segment.footer
    if footer is None:
        return findings
    if len({_segment_values(file.footer) for file in segment.files if file.footer is not None}) > 1:
        detail = "the segment's files disagree on its range or counts"
        findings.append(segment.finding(FindingKind.FOOTER, detail))
    findings += _missing_files(segment, footer)
    if footer.accounted > footer.span:
        detail = f"the footer counts {footer.accounted} records in a range of {footer.span} offsets"
        findings.append(segment.finding(FindingKind.COUNTS, detail))
    return findings


def _segment_values(footer: Footer) -> tuple[int, ...]:
    return (footer.first_offset, footer.last_offset, footer.data_records, footer.quarantined, footer.skipped)


def _missing_files(segment: Segment, footer: Footer) -> list[Finding]:
    """A file the segment's counts expect but that is not there."""
    findings = []
    if footer.data_records > 0 and not segment.data:
        detail = (
            f"the segment counts {footer.data_records} data rows but has no data file "
            "(removed, or a crash between publishing the quarantine file and the data file)"
        )
        findings.append(segment.finding(FindingKind.MISSING_FILE, detail))
    if footer.quarantined > 0 and not segment.quarantine:
        detail = f"the segment counts {footer.quarantined} quarantined records but has no quarantine file"
        findings.append(segment.finding(FindingKind.MISSING_FILE, detail))
    return findings


def overlaps(segments: list[Segment]) -> list[Finding]:
    """A duplicate finding for each segment whose range overlaps an earlier segment's."""
    findings: list[Finding] = []
    reach: tuple[Segment, int] | None = None  # the segment reaching furthest so far, and its last offset
    for segment in segments:
        last = segment.last_offset
        if last is None:
            continue
        if reach is not None and segment.first_offset <= reach[1]:
            other, other_last = reach
            detail = (
                f"offsets {segment.first_offset}-{min(last, other_last)} are also in the segment "
                f"{other.path} ({other.first_offset}-{other_last})"
            )
            findings.append(segment.finding(FindingKind.DUPLICATE, detail))
        if reach is None or last > reach[1]:
            reach = (segment, last)
    return findings


def covered_ranges(segments: Iterable[Segment]) -> list[tuple[int, int]]:
    """The merged inclusive offset ranges the complete segments cover, in order."""
    merged: list[tuple[int, int]] = []
    ranges = sorted(
        (s.first_offset, s.last_offset) for s in segments if s.complete and s.last_offset is not None
    )
    for first, last in ranges:
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged
