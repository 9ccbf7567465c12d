"""The checks that need no reading of the topic, for every partition of one topic.

Files are listed once per topic and kind, then checked one at a time; what stays in memory per
partition is its files' names and footers. A partition the archive holds but the cluster does not
is still checked file by file; only its coverage cannot be checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from consumer.naming import FileKind, SegmentFileName
from consumer.records import TopicPartition
from consumer.storage import ArchiveStorage, TopicListing
from consumer.verify.coverage import Hole, hole_finding, holes, state_findings
from consumer.verify.files import check_file
from consumer.verify.model import Finding, FindingKind, PartitionState
from consumer.verify.segments import Segment, check_segment, covered_ranges, group_segments, overlaps


@dataclass(slots=True)
class PartitionResult:
    """One partition's archive and everything found about it."""

    tp: TopicPartition
    state: PartitionState | None
    files: int
    segments: list[Segment]
    holes: list[Hole]
    ranges: list[tuple[int, int]]
    findings: list[Finding] = field(default_factory=list)

    @property
    def archived(self) -> tuple[int, int] | None:
        """The first and last offset the complete segments cover."""
        return (self.ranges[0][0], self.ranges[-1][1]) if self.ranges else None


def scan_topic(
    storage: ArchiveStorage, topic: str, states: Mapping[int, PartitionState], deep: bool
) -> list[PartitionResult]:
    """Check every partition of a topic that Kafka or the archive knows."""
    data = storage.scan(FileKind.DATA, topic)
    quarantine = storage.scan(FileKind.QUARANTINE, topic)
    names = [*data.finished, *quarantine.finished]
    partitions = set(states) | {name.partition for name in names} | _in_progress_partitions(data, quarantine)
    return [
        scan_partition(
            storage,
            TopicPartition(topic, partition),
            states.get(partition),
            [name for name in names if name.partition == partition],
            [path for owner, path in [*data.in_progress, *quarantine.in_progress] if owner == partition],
            deep,
        )
        for partition in sorted(partitions)
    ]


def _in_progress_partitions(*listings: TopicListing) -> set[int]:
    return {owner for listing in listings for owner, _path in listing.in_progress}


def scan_partition(
    storage: ArchiveStorage,
    tp: TopicPartition,
    state: PartitionState | None,
    names: list[SegmentFileName],
    in_progress: list[str],
    deep: bool,
) -> PartitionResult:
    """File, segment and coverage checks of one partition (holes stay unread unless deep)."""
    findings = [
        Finding.of(
            FindingKind.IN_PROGRESS, tp, "a stale in-progress file (a crash or a running daemon)", path
        )
        for path in sorted(in_progress)
    ]
    files = []
    for name in sorted(names, key=lambda name: (name.start_offset, name.kind.value, name.path)):
        file, file_findings = check_file(storage, name)
        files.append(file)
        findings += file_findings
    segments = group_segments(files)
    for segment in segments:
        findings += check_segment(segment)
    findings += overlaps(segments)
    ranges = covered_ranges(segments)
    result = PartitionResult(tp, state, len(files), segments, [], ranges, findings)
    if state is None:
        detail = "the cluster has no such partition: only the files were checked"
        findings.append(Finding.of(FindingKind.NOTE, tp, detail))
        return result
    findings += state_findings(ranges, state)
    result.holes = holes(ranges, state)
    if not deep:
        findings += [hole_finding(tp, hole, None) for hole in result.holes]
    return result
