"""Run the benchmark: produce each workload once, then measure every system on it in the same run.

    python -m bench.run [--quick] [--repeat N] [--workloads W1,W2,W3] [--systems a,b,c,d]
                        [--records N] [--partitions N] [--archiver-idle S] [--quix-commit-interval S]

Systems: (a) the consume ceiling, (b) the encode ceiling, (c) kafka-parquet-archiver and
(d) Quix Streams' file sink writing Parquet, both end to end (process start until every offset is
committed). Each runs in its own process; RSS is sampled every 50 ms. With --repeat N every system
runs N times, in interleaved rounds (a, b, c, d, a, b, c, d, ...), and the report compares each
system's median run. Results go to bench/results/
as JSON, Markdown and a PNG chart (latest.md is the newest report), and the table is printed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bench import charts, report
from bench.broker import PARTITIONS, produce, start_broker, stop_broker
from bench.measure import Job, Result
from bench.systems import (
    ARCHIVER_IDLE_S,
    QUIX_COMMIT_INTERVAL_S,
    consume_ceiling,
    encode_ceiling,
    quix_versions,
    run_archiver,
    run_quix,
)

# (c) and (d) are timed from process start, which holds a fixed second or so (start-up, the group
# join, the idle timeout that finishes the last files): W1 is long enough for it to weigh little
# where the archiver is fastest (at a million records, a quarter to a third of (c)'s time when this
# 2-core machine was otherwise idle).
RECORDS = {
    "quick": {"W1": 2_000_000, "W2": 150_000, "W3": 300_000},
    "full": {"W1": 3_000_000, "W2": 400_000, "W3": 1_000_000},
}
FIXED_SCHEMA = {"W1", "W2"}  # (b) encodes against one schema; W3's churning keys have none


def systems(idle_s: float, commit_interval_s: float) -> dict[str, Callable[[Job], Result]]:
    return {
        "a": consume_ceiling,
        "b": encode_ceiling,
        "c": lambda job: run_archiver(job, idle_s),
        "d": lambda job: run_quix(job, commit_interval_s),
    }


def measure(job: Job, chosen: list[str], idle_s: float, commit_interval_s: float) -> list[Result]:
    runners = systems(idle_s, commit_interval_s)
    letters = [letter for letter in chosen if letter != "b" or job.workload in FIXED_SCHEMA]
    return [runners[letter](job) for letter in letters]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.run", description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer records: minutes instead of tens of minutes"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of measurements per workload (default 1)"
    )
    parser.add_argument("--workloads", default="W1,W2", help="comma-separated, of W1, W2, W3 (default W1,W2)")
    parser.add_argument("--systems", default="a,b,c,d", help="comma-separated, of a, b, c, d (default all)")
    parser.add_argument(
        "--records", type=int, help="records of every workload (default: each workload's own count, by mode)"
    )
    parser.add_argument(
        "--partitions", type=int, default=PARTITIONS, help=f"partitions of each topic (default {PARTITIONS})"
    )
    parser.add_argument(
        "--archiver-idle",
        type=float,
        default=ARCHIVER_IDLE_S,
        help=f"(c)'s file_max_idle_s, seconds (default {ARCHIVER_IDLE_S:g}: see bench/systems.py)",
    )
    parser.add_argument(
        "--quix-commit-interval",
        type=float,
        default=QUIX_COMMIT_INTERVAL_S,
        help=f"Quix checkpoint interval, seconds (default {QUIX_COMMIT_INTERVAL_S:g}: see bench/systems.py)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat}")
    if args.records is not None and args.records < 1:
        parser.error(f"--records must be at least 1, not {args.records}")
    if args.partitions < 1:
        parser.error(f"--partitions must be at least 1, not {args.partitions}")
    if args.archiver_idle <= 0:
        parser.error(f"--archiver-idle must be above 0, not {args.archiver_idle:g}")
    return args


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C: the measured process and the broker are stopped, not orphaned."""
    raise SystemExit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = parse(sys.argv[1:])
    mode = "quick" if args.quick else "full"
    chosen = args.systems.split(",")
    bootstrap, started_broker = start_broker()
    work = Path(tempfile.mkdtemp(prefix="kpa-bench-", dir=os.environ.get("BENCH_WORK")))
    results: list[Result] = []
    try:
        for workload in args.workloads.split(","):
            count = args.records or RECORDS[mode][workload]
            topic, input_bytes = produce(bootstrap, workload, count, args.partitions)
            print(
                f"{workload}: produced {count:,} records ({input_bytes / 1e6:.0f} MB) into {topic} "
                f"({args.partitions} partitions)",
                flush=True,
            )
            job = Job(bootstrap, workload, topic, count, input_bytes, work)
            for round_ in range(1, args.repeat + 1):
                measured = measure(job, chosen, args.archiver_idle, args.quix_commit_interval)
                results += [replace(result, round=round_) for result in measured]
            print(report.table([r for r in results if r.workload == workload]), flush=True)
    finally:
        if started_broker:
            stop_broker()
    run = report.Run(
        stamp=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        mode=mode,
        command=shlex.join(["python", "-m", "bench.run", *sys.argv[1:]]),
        machine=report.machine(quix_versions()),
        archiver_idle_s=args.archiver_idle,
        quix_commit_interval_s=args.quix_commit_interval,
    )
    markdown = report.markdown(run, results)
    charts.draw(results, report.write(run, results, markdown), f"kafka-parquet-archiver benchmark {run.name}")
    print("\n" + markdown)
    print(f"work files (logs, output) kept in {work}")
    return 0 if all(r.ok for r in results if not r.system.startswith("d")) else 1


if __name__ == "__main__":
    sys.exit(main())
