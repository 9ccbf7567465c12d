"""The --deep pass over one partition: stream the topic once and follow the segments along it.

The read spans the holes and the complete segments from the low watermark (or the archive's
start) to the committed offset or the archive's end, whichever is larger. Each record is matched
against the open segments' files (see probe.py) or counted in the hole it falls in; a hole
without records is explained. Memory: the open segments' offset columns and the samples.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from consumer.records import TopicPartition
from consumer.storage import ArchiveStorage
from consumer.verify.coverage import Hole, hole_finding
from consumer.verify.model import Finding, FindingKind, PartitionState, TopicInspector, TopicRecord
from consumer.verify.probe import Sample, SegmentProbe
from consumer.verify.segments import Segment

LIMITED = (
    "data files without the _offset column (output.metadata_columns): deep checks count their "
    "data rows instead of matching them, and compare only quarantined records' content"
)


@dataclass(frozen=True, slots=True)
class DeepPlan:
    """What to read of one partition, [start, end), and what to follow while reading."""

    tp: TopicPartition
    start: int
    end: int
    segments: list[Segment]
    holes: list[Hole]

    @property
    def length(self) -> int:
        return max(0, self.end - self.start)


def plan(state: PartitionState, segments: list[Segment], holes: list[Hole]) -> DeepPlan:
    """The read range, and the complete segments that overlap it."""
    complete = [segment for segment in segments if segment.complete]
    lasts = [segment.last_offset for segment in complete if segment.last_offset is not None]
    firsts = [segment.first_offset for segment in complete] + [hole.first for hole in holes[:1]]
    start = max(state.low, min(firsts)) if firsts else state.low
    end = min(state.high, max(state.committed or state.low, max(lasts, default=-1) + 1))
    inside = [
        segment
        for segment in complete
        if segment.first_offset < end and segment.last_offset is not None and segment.last_offset >= start
    ]
    return DeepPlan(state.tp, start, end, inside, holes)


class Sampler:
    """Picks every stride-th offset from a partition's read start: deterministic, spread evenly."""

    def __init__(self, stride: int) -> None:
        self._stride = stride

    def chosen(self, start: int, offset: int) -> bool:
        return self._stride > 0 and (offset - start) % self._stride == 0


def deep_check(
    storage: ArchiveStorage, inspector: TopicInspector, plan: DeepPlan, sampler: Sampler, deadline: float
) -> list[Finding]:
    """Read the plan's range once; return the segments' and the holes' findings."""
    walker = Walker(storage, plan)
    holes = HoleCounter(plan.holes)
    for record in inspector.read(plan.tp, plan.start, plan.end, deadline):
        probes = walker.at(record.offset)
        if probes:
            observe(record, probes, sampler.chosen(plan.start, record.offset))
        else:
            holes.count(record.offset)
    findings = walker.finish()
    findings += [hole_finding(plan.tp, hole, seen) for hole, seen in zip(plan.holes, holes.seen, strict=True)]
    if any(not file.offset_column for segment in plan.segments for file in segment.data):
        findings.append(Finding.of(FindingKind.LIMITED, plan.tp, LIMITED))
    return findings


def observe(record: TopicRecord, probes: list[SegmentProbe], sampled: bool) -> None:
    """Match one record against the open segments' rows and tally what is wrong."""
    hits = [hit for probe in probes for hit in probe.hits(record.offset)]
    for probe in probes:
        probe.counts.present += 1
    if not hits:
        for probe in probes:
            if record.value is None:
                probe.counts.tombstones += 1
            elif probe.rows_unknown:
                probe.counts.unlocated += 1
            else:
                probe.counts.missing.add(record.offset)
        return
    for hit in hits:
        if hit.tombstone != (record.value is None):
            hit.probe.counts.misplaced.add(record.offset)
    if len(hits) > 1:
        for probe in {id(hit.probe): hit.probe for hit in hits}.values():
            probe.counts.duplicated.add(record.offset)
    elif sampled:
        hit = hits[0]
        hit.probe.samples.append(Sample(record, hit.cursor, hit.row))


class Walker:
    """Opens each segment when the stream reaches its first offset and closes it after its last."""

    def __init__(self, storage: ArchiveStorage, plan: DeepPlan) -> None:
        self._storage = storage
        self._plan = plan
        self._pending = deque((segment.first_offset, segment) for segment in plan.segments)
        self._open: list[SegmentProbe] = []
        self._closes_after = -1  # the smallest last offset of the open segments
        self._findings: list[Finding] = []

    def at(self, offset: int) -> list[SegmentProbe]:
        """The segments whose range holds this offset (checked cheaply: called once per record)."""
        if self._closes_after < offset and self._open:
            self._close([probe for probe in self._open if probe.last_offset < offset])
            self._open = [probe for probe in self._open if probe.last_offset >= offset]
            self._closes_after = min((probe.last_offset for probe in self._open), default=-1)
        while self._pending and self._pending[0][0] <= offset:
            probe = self._probe(self._pending.popleft()[1])
            if probe.last_offset < offset:  # the topic has none of its offsets any more
                self._close([probe])
                continue
            self._open.append(probe)
            only = len(self._open) == 1
            self._closes_after = probe.last_offset if only else min(self._closes_after, probe.last_offset)
        return self._open

    def finish(self) -> list[Finding]:
        """Close every segment, including those the stream never reached (one open at a time)."""
        self._close(self._open)
        self._open = []
        while self._pending:
            self._close([self._probe(self._pending.popleft()[1])])
        return self._findings

    def _probe(self, segment: Segment) -> SegmentProbe:
        last = segment.first_offset if segment.last_offset is None else segment.last_offset
        partial = segment.first_offset < self._plan.start or last >= self._plan.end
        return SegmentProbe(self._storage, segment, partial)

    def _close(self, probes: Iterable[SegmentProbe]) -> None:
        for probe in probes:
            self._findings += probe.close()


class HoleCounter:
    """Counts the records that fall into each hole of an ascending stream of offsets."""

    def __init__(self, holes: list[Hole]) -> None:
        self._holes = holes
        self._next = 0
        self.seen = [0] * len(holes)

    def count(self, offset: int) -> None:
        while self._next < len(self._holes) and self._holes[self._next].last < offset:
            self._next += 1
        if self._next < len(self._holes) and self._holes[self._next].first <= offset:
            self.seen[self._next] += 1
