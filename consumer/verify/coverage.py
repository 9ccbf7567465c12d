"""Coverage: every offset from the low watermark up to the committed offset must be in a segment.

Pure functions over merged segment ranges and Kafka's view of the partition. A hole below the
committed offset inside the archive is a gap; one after the archive's end is a loss. A hole is
explained only when the topic has no records in it (read in --deep mode); offsets below the low
watermark were deleted by retention and are never checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from consumer.records import TopicPartition
from consumer.verify.model import Finding, FindingKind, PartitionState


@dataclass(frozen=True, slots=True)
class Hole:
    """Offsets [first, last] below the committed offset that no complete segment covers."""

    first: int
    last: int
    kind: FindingKind  # GAP inside the archive, LOSS past its end

    @property
    def size(self) -> int:
        return self.last - self.first + 1


def holes(ranges: list[tuple[int, int]], state: PartitionState) -> list[Hole]:
    """The holes in [low watermark, committed offset) between the merged covered ranges."""
    if state.committed is None:
        return []
    end = state.committed - 1
    found: list[Hole] = []
    cursor = state.low
    for first, last in ranges:
        if cursor < first and cursor <= end:
            found.append(Hole(cursor, min(first - 1, end), FindingKind.GAP))
        cursor = max(cursor, last + 1)
    if cursor <= end:
        found.append(Hole(cursor, end, FindingKind.LOSS))
    return found


def hole_finding(tp: TopicPartition, hole: Hole, records: int | None) -> Finding:
    """The finding for a hole, given how many records the topic has in it (None: not read)."""
    where = f"offsets {hole.first}-{hole.last} ({hole.size}) are below the committed offset but in no segment"
    if hole.kind is FindingKind.LOSS:
        where = f"the committed offset is past the archive's end: {where}"
    if records is None:
        detail = f"{where}; the topic was not read (--deep tells whether it has records there)"
        return Finding.of(hole.kind, tp, detail, None, (hole.first, hole.last))
    if records == 0:
        detail = f"{where}, but the topic has no records there (compaction or transaction markers)"
        return Finding.of(FindingKind.EXPLAINED_HOLE, tp, detail, None, (hole.first, hole.last))
    detail = f"{where}; the topic has {records} records there"
    return Finding.of(hole.kind, tp, detail, None, (hole.first, hole.last))


def state_findings(ranges: list[tuple[int, int]], state: PartitionState) -> list[Finding]:
    """What the committed offset and the watermarks say about the archive as a whole."""
    tp, committed = state.tp, state.committed
    archive_end = ranges[-1][1] if ranges else None
    findings: list[Finding] = []
    if archive_end is not None and archive_end >= state.high:
        detail = f"the archive holds offsets up to {archive_end} but the partition ends before {state.high}"
        findings.append(Finding.of(FindingKind.BEYOND_END, tp, detail, None, (state.high, archive_end)))
    if committed is None:
        if archive_end is not None or state.high > state.low:
            findings.append(Finding.of(FindingKind.NO_COMMIT, tp, "the group has no committed offset here"))
        return findings
    if archive_end is not None and archive_end >= committed:
        detail = (
            f"the archive is ahead of the committed offset {committed} up to {archive_end} "
            "(finished before the commit; the next run resumes after the archive)"
        )
        findings.append(Finding.of(FindingKind.ARCHIVE_AHEAD, tp, detail, None, (committed, archive_end)))
    if committed < state.low:
        detail = f"the committed offset {committed} is below the low watermark {state.low} (retention)"
        findings.append(Finding.of(FindingKind.NOTE, tp, detail, None, (committed, state.low - 1)))
    return findings
