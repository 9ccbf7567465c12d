"""Memory soak: millions of churning-key records through the real daemon, until every offset is committed.

    python -m bench.soak [--records N] [--allocator mimalloc|jemalloc|system] [--keep]

The founding analysis measured a Go writer whose RSS grew 80-120 MiB per 100,000 dynamic-key maps
until it was OOM-killed. This produces W3 (bench/workloads.py: a typed core, 3-5 keys per record
drawn from a universe of one million, two keys whose types flip) into the benchmark's broker, runs
`kafka-parquet-archiver run` on it with a 64 MiB buffer budget and 8 MiB row groups, samples the
process's RSS from outside every second (psutil) next to its own `stats` events (one a second),
then reads the finished files with pyarrow. Pass criteria, each printed as met or not met:
  - RSS at the end within 5% of RSS at 25% of the run (medians over 20-30% and 90-100% of records)
  - peak RSS (the kernel's high-water mark) at most memory.max_buffered_bytes + 200 MiB
  - no file has more typed columns than schema.max_columns
  - every record in the output once: rows + quarantined == produced, distinct (partition, offset)
  - the daemon stops cleanly on SIGTERM (exit code 0)
and the RSS growth per 100,000 records after 25% is printed next to the Go writer's. Results go to
bench/results/soak-<stamp>-<records>-<allocator>.{csv,png,md} and soak-latest.*; the exit code is
1 if a criterion is not met. The work folder (config, daemon log, archive) is deleted unless
--keep is given or the run failed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import tomli_w
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from bench import soak_checks, soak_report
from bench.broker import PARTITIONS, CommitWatcher, produce, start_broker, stop_broker
from bench.report import machine
from bench.soak_checks import MIB, Check, Sample
from bench.soak_daemon import DaemonRun, SoakError, watch
from bench.systems import archiver_settings
from consumer.config import Allocator

RECORDS = 5_000_000
WORKLOAD = "W3"
BUDGET_BYTES = 64 * MIB
ROW_GROUP_BYTES = 8 * MIB  # 6 partitions x 8 MiB fit the budget, as docs/operations.md advises
# Small files, so that a run rotates often: per-file state (writers, footers, schemas) that leaked
# would show up as growth.
FILE_BYTES = 16 * MIB
HEADROOM_BYTES = 200 * MIB
MAX_COLUMNS = 256  # the default, written out because a criterion reads it
ALLOCATORS = get_args(Allocator)
SECRET_WORDS = ("password", "secret", "jaas", "oauthbearer", "ssl.key", ".pem", "token", "credential")


def soak_settings(bootstrap: str, topic: str, group: str, root: Path) -> dict[str, Any]:
    """The benchmark's settings (stats every second) with a 64 MiB budget, 8 MiB row groups, 16 MiB files."""
    return {
        **archiver_settings(bootstrap, topic, group, root),
        "rotation": {
            "file_max_bytes": FILE_BYTES,
            "file_max_idle_s": 1.0,
            "row_group_max_bytes": ROW_GROUP_BYTES,
        },
        "memory": {"max_buffered_bytes": BUDGET_BYTES},
        "schema": {"max_columns": MAX_COLUMNS},
        "shutdown": {"timeout_s": 60.0},
    }


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"soak-probe-{uuid.uuid4().hex[:8]}"})
    try:
        return {
            partition: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
            for partition in range(PARTITIONS)
        }
    finally:
        consumer.close()


def delete_topic(bootstrap: str, topic: str) -> None:
    """Remove the soak's topic (a 5M-record topic takes about a gigabyte of the broker's disk)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive the answer
    try:
        admin.delete_topics([topic])[topic].result(timeout=60)
    except KafkaException as error:
        print(f"could not delete topic {topic}: {error}", flush=True)


@dataclass(frozen=True, slots=True)
class Measured:
    """The daemon's run: samples, seconds until every offset was committed, peak RSS, exit code, allocator."""

    samples: list[Sample]
    elapsed_s: float
    high_water_bytes: int
    exit_code: int | None
    allocator: str


def run_daemon(bootstrap: str, topic: str, records: int, work: Path, allocator: str | None) -> Measured:
    """Run the archiver on the topic until every offset is committed, then stop it with SIGTERM."""
    group = f"soak-{uuid.uuid4().hex[:8]}"
    config = work / "archiver.toml"
    config.write_text(tomli_w.dumps(soak_settings(bootstrap, topic, group, work / "archive")))
    env = {**os.environ, **({"ARCHIVER_MEMORY__ALLOCATOR": allocator} if allocator else {})}
    with CommitWatcher(bootstrap, group, topic) as watcher:
        daemon = DaemonRun(config, work / "archiver.log", env)
        try:
            samples, elapsed = watch(daemon, watcher, records, time.monotonic())
            high_water = daemon.high_water_bytes()
            backend = daemon.latest.get("arrow_backend", "unknown")
        finally:
            code = daemon.stop()
    if allocator and backend != allocator:
        raise SoakError(f"memory.allocator = {allocator} was asked for, the daemon used {backend}")
    if not samples:
        raise SoakError("no RSS sample was taken")
    return Measured(samples, elapsed, high_water, code, backend)


def checks(measured: Measured, archive: soak_checks.Archive, records: int) -> list[Check]:
    samples = measured.samples
    return [
        soak_checks.rss_flat(samples, records),
        soak_checks.rss_peak(samples, measured.high_water_bytes, BUDGET_BYTES, HEADROOM_BYTES),
        soak_checks.column_cap(archive, MAX_COLUMNS),
        soak_checks.every_record(archive, records),
        soak_checks.clean_exit(measured.exit_code),
    ]


def soak(bootstrap: str, topic: str, args: argparse.Namespace, work: Path) -> bool:
    """Measure the daemon on the produced topic, check the archive, print and write the results."""
    measured = run_daemon(bootstrap, topic, args.records, work, args.allocator)
    archive = soak_checks.read_archive(work / "archive", topic, end_offsets(bootstrap, topic))
    found = checks(measured, archive, args.records)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run = soak_report.SoakRun(
        name=f"{stamp}-{args.records}-{measured.allocator}",
        command=shlex.join(["python", "-m", "bench.soak", *sys.argv[1:]]),
        records=args.records,
        allocator=measured.allocator,
        budget_bytes=BUDGET_BYTES,
        row_group_bytes=ROW_GROUP_BYTES,
        headroom_bytes=HEADROOM_BYTES,
        elapsed_s=measured.elapsed_s,
        machine={key: value for key, value in machine({}).items() if not key.startswith("quix")},
        overrides=_overrides(os.environ),
    )
    growth = soak_checks.growth_line(measured.samples, args.records)
    text = soak_report.summary(run, measured.samples, found, growth)
    written = soak_report.write(run, measured.samples, text)
    print(f"\n{text}\n\nresults: {written.with_suffix('.*')} (and soak-latest.*)", flush=True)
    return soak_checks.verdict(found)


def _overrides(environment: Mapping[str, str]) -> dict[str, str]:
    """The ARCHIVER_* settings the daemon inherits, for the record; values that may hold secrets masked."""
    return {
        name: "***" if any(word in f"{name} {value}".lower() for word in SECRET_WORDS) else value
        for name, value in environment.items()
        if name.upper().startswith("ARCHIVER_")
    }


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.soak", description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--records", type=int, default=RECORDS, help=f"records to produce and archive (default {RECORDS:,})"
    )
    parser.add_argument(
        "--allocator",
        choices=ALLOCATORS,
        help="memory.allocator for the daemon; default: the archiver's default (jemalloc)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder and the topic")
    args = parser.parse_args(argv)
    if args.records < 1000:
        parser.error("--records must be at least 1000")
    return args


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through the clean-ups: daemon, topic, broker


def main() -> int:
    args = parse(sys.argv[1:])
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        bootstrap, started_broker = start_broker()
    except subprocess.CalledProcessError as error:
        print(f"soak failed: the benchmark broker did not start ({error})", flush=True)
        return 1
    work = Path(tempfile.mkdtemp(prefix="kpa-soak-", dir=os.environ.get("BENCH_WORK")))
    topic: str | None = None
    passed = False
    try:
        print(f"producing {args.records:,} {WORKLOAD} records into the broker at {bootstrap}...", flush=True)
        topic, input_bytes = produce(bootstrap, WORKLOAD, args.records)
        print(f"produced into {topic} ({input_bytes / 1e6:,.0f} MB); archiving...", flush=True)
        passed = soak(bootstrap, topic, args, work)
    except SoakError as failure:
        print(f"soak failed: {failure}", flush=True)
    finally:
        if topic is not None and not args.keep:
            delete_topic(bootstrap, topic)
        if started_broker:
            stop_broker()
        _clean_up(work, keep=args.keep or not passed)
    return 0 if passed else 1


def _clean_up(work: Path, keep: bool) -> None:
    if keep:
        print(f"work folder (config, daemon log, archive) kept in {work}", flush=True)
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
