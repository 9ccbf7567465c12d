"""`verify`: check the archive against itself and against Kafka; the exit code says whether it is consistent.

Two passes. The first lists and checks every file of every partition (footers, offsets, segments,
coverage) one file at a time. With --deep, the second streams each partition's topic range once
(see deep.py); the sample of content checks is spread over all partitions by one stride, so the
same archive and topic always give the same sample. Nothing is written, and no offset committed.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass
from typing import TextIO

from consumer.clock import Clock, SystemClock
from consumer.config import Settings
from consumer.errors import ExitCode, FatalError
from consumer.storage import ArchiveStorage, open_storage
from consumer.verify.deep import Sampler, deep_check, plan
from consumer.verify.model import Finding, FindingKind, PartitionState, TopicInspector
from consumer.verify.report import Verification, write_report
from consumer.verify.scan import PartitionResult, scan_topic

DEFAULT_SAMPLE = 100
READ_BASE_S = 60.0  # the deadline of a partition's read: this, plus the time at READ_MIN_RECORDS_PER_S
READ_MIN_RECORDS_PER_S = 2_000.0


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    """How thoroughly to verify."""

    deep: bool = False
    sample: int = DEFAULT_SAMPLE


def verify_archive(settings: Settings, deep: bool, as_json: bool, sample: int, out: TextIO) -> int:
    """Verify the configured topics' archive, write the report to out; exit code 0 only if consistent."""
    from consumer.kafka.inspect import KafkaInspector  # noqa: PLC0415 - the Kafka client only when verifying

    try:
        storage = open_storage(settings.output)
        inspector = KafkaInspector(settings.kafka)
        try:
            verification = verify(storage, inspector, VerifyOptions(deep, sample))
        finally:
            inspector.close()
            storage.close()
    except FatalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.FATAL
    write_report(verification, as_json, out)
    return ExitCode.OK if verification.consistent else ExitCode.FATAL


def verify(
    storage: ArchiveStorage, inspector: TopicInspector, options: VerifyOptions, clock: Clock | None = None
) -> Verification:
    """Check the archive in storage against the cluster the inspector sees."""
    view = inspector.describe()
    states: dict[str, dict[int, PartitionState]] = defaultdict(dict)
    for state in view.partitions:
        states[state.tp.topic][state.tp.partition] = state
    results: list[PartitionResult] = []
    for topic in sorted({*states, *view.missing_topics}):
        results += scan_topic(storage, topic, states[topic], options.deep)
    if options.deep:
        read_partitions(storage, inspector, results, options.sample, clock or SystemClock())
    missing = [
        Finding(FindingKind.TOPIC_MISSING, topic, None, "the cluster has no such topic: coverage not checked")
        for topic in view.missing_topics
    ]
    return Verification(results, missing, options.deep)


def read_partitions(
    storage: ArchiveStorage,
    inspector: TopicInspector,
    results: list[PartitionResult],
    sample: int,
    clock: Clock,
) -> None:
    """The --deep pass: read each partition's range once; add the findings to its result."""
    plans = [
        (result, plan(result.state, result.segments, result.holes)) for result in results if result.state
    ]
    total = sum(each.length for _result, each in plans)
    sampler = Sampler(-(-total // sample) if sample > 0 else 0)  # about `sample` records in all
    for result, partition_plan in plans:
        deadline = clock.monotonic() + READ_BASE_S + partition_plan.length / READ_MIN_RECORDS_PER_S
        result.findings += deep_check(storage, inspector, partition_plan, sampler, deadline)
