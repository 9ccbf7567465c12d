"""The measured systems, each in its own process: (a), (b) the ceilings, (c) the archiver, (d) Quix.

(a) and (b) report their own numbers; (c) and (d) are daemons measured from the outside
(bench/measure.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import tomli_w

from bench.broker import REPO
from bench.measure import DEADLINE_S, Daemon, Job, Result, RssSampler, failed, run_daemon
from bench.progress import flowing_rate

QUIX_PYTHON = Path(os.environ.get("BENCH_QUIX_PYTHON", REPO / "bench" / ".venv-quix" / "bin" / "python"))
# Quix commits a checkpoint, one Parquet file per partition that had records, every
# `commit_interval` seconds and keeps every record since the last one as a Python dict. Chosen by
# running (d) alone on W1 quick (300k records) on this machine, each a few times where close;
# records/s from process start to the last commit, peak RSS:
#   0.5 s: 20.9k, 344 MiB     1 s: 24.4k 22.8k 25.5k 28.6k, 368-400 MiB
#   2 s: 22.2k 25.7k 14.3k, 373-451 MiB     5 s (Quix's default): 22.0k 21.4k, 537-605 MiB
#   10 s: 11.5k, 705 MiB      15 s: 15.4k, 758 MiB      30 s: 8.8k, 756 MiB
# (W2 quick: 1 s 7.3k, 2 s 6.1k, 5 s 6.5k records/s.) 1 s is Quix's best throughput and its lowest
# memory; shorter intervals pay per-file overhead, longer ones hold more records as dicts and wait
# up to one interval after the last record. The price is many small files (the table counts them).
QUIX_COMMIT_INTERVAL_S = 1.0
# Quix's Parquet writer builds, per batch, a dict over the union of the batch's keys for every
# row: with churning keys (W3) that is rows x distinct keys, which would take the machine's memory
# (and the batch would then fail anyway: pa.Table.from_pylist raises on W3's int/str flips).
QUIX_RSS_LIMIT_BYTES = 4 * 2**30
QUIX_STALL_S = 120.0

# --- (a), (b): the ceilings report their own numbers --------------------------------------------


def run_ceiling(system: str, job: Job, arguments: list[str]) -> Result:
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.ceilings", *arguments], stdout=subprocess.PIPE, cwd=REPO
    )
    sampler = RssSampler(child.pid)
    output, _ = child.communicate(timeout=DEADLINE_S)
    sampler.stop()
    if child.returncode != 0:
        return failed(system, job, f"exit code {child.returncode}", sampler.series)
    data = orjson.loads(output)
    return Result(system, job.workload, rss_series=sampler.series, **data)


def consume_ceiling(job: Job) -> Result:
    arguments = ["--bootstrap", job.bootstrap, "--topic", job.topic, "--records", str(job.records)]
    return run_ceiling("a consume ceiling", job, ["consume", *arguments])


def encode_ceiling(job: Job) -> Result:
    arguments = ["--workload", job.workload, "--records", str(job.records), "--out", str(job.work)]
    return run_ceiling("b encode ceiling", job, ["encode", *arguments])


# --- (c), (d): daemons --------------------------------------------------------------------------


# How long (c) waits after a partition's last record before finishing its file (file_max_idle_s).
# It is waiting, not work, and it is part of (c)'s end-to-end time; `bench.run --archiver-idle`
# measures others.
ARCHIVER_IDLE_S = 0.5


def archiver_settings(
    bootstrap: str, topic: str, group: str, root: Path, idle_s: float = ARCHIVER_IDLE_S
) -> dict[str, Any]:
    """The archiver's benchmark settings: the defaults, but files finish `idle_s` after the last
    record, and a 32 MiB buffer budget with 8 MiB row groups (the defaults, 512 MiB and 64 MiB, are
    sized for production hosts; memory is bounded by these two settings, see docs/operations.md). A
    `stats` event every second gives its rate while records flow (bench/progress.py)."""
    return {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "group_id": group,
            "topics": [topic],
            "poll_timeout_s": 0.1,
        },
        "output": {"root": str(root)},
        "rotation": {"file_max_idle_s": idle_s, "row_group_max_bytes": 8 * 1024 * 1024},
        "memory": {"max_buffered_bytes": 32 * 1024 * 1024},
        "stats": {"interval_s": 1.0},
    }


def _fresh_group(name: str, job: Job) -> tuple[str, Path]:
    """A new consumer group and an empty folder named after it: every measurement, every round,
    reads the whole topic and writes its own output (an archive left by an earlier round would
    make the archiver resume at its end, with nothing to do)."""
    group = f"bench-{name}-{job.workload}-{uuid.uuid4().hex[:8]}"
    folder = job.work / group
    folder.mkdir(parents=True)
    return group, folder


def run_archiver(job: Job, idle_s: float = ARCHIVER_IDLE_S) -> Result:
    group, work = _fresh_group("archiver", job)
    root = work / "archive"
    config = work / "archiver.toml"
    config.write_text(tomli_w.dumps(archiver_settings(job.bootstrap, job.topic, group, root, idle_s)))
    command = [sys.executable, "-m", "consumer", "--log-format", "json", "run", "--config", str(config)]
    log = work / "archiver.log"
    result = run_daemon(Daemon("c archiver", command, REPO, group, root, log), job)
    return replace(result, flowing_records_per_s=flowing_rate(log, job.records)) if result.ok else result


def run_quix(job: Job, commit_interval_s: float = QUIX_COMMIT_INTERVAL_S) -> Result:
    system = "d quix FileSink"
    if not QUIX_PYTHON.exists():
        return failed(system, job, f"not installed: {QUIX_PYTHON} (`make bench-quick` sets it up)")
    group, cwd = _fresh_group("quix", job)
    command = [
        str(QUIX_PYTHON), str(REPO / "bench" / "quix.py"), "run", "--bootstrap", job.bootstrap,
        "--topic", job.topic, "--group", group, "--commit-interval", str(commit_interval_s),
    ]  # fmt: skip
    output = cwd / "parquet"  # bench/quix.py's OUTPUT_DIRECTORY
    daemon = Daemon(system, command, cwd, group, output, cwd / "quix.log", QUIX_STALL_S, QUIX_RSS_LIMIT_BYTES)
    return run_daemon(daemon, job)


def quix_versions() -> dict[str, str]:
    """Versions inside the Quix virtualenv (its own confluent-kafka and librdkafka)."""
    if not QUIX_PYTHON.exists():
        return {}
    command = [str(QUIX_PYTHON), str(REPO / "bench" / "quix.py"), "versions"]
    done = subprocess.run(command, capture_output=True, check=False, timeout=120)
    return orjson.loads(done.stdout) if done.returncode == 0 else {}
