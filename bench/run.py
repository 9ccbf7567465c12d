"""Run the benchmark: produce each workload once, then measure every system on it in the same run.

    python -m bench.run [--quick] [--workloads W1,W2,W3]

Systems: (a) the consume ceiling, (b) the encode ceiling, (c) kafka-parquet-archiver end to end
(process start until every offset is committed). Each runs in its own process; RSS is sampled
every 50 ms. Results go to bench/results/ as JSON and Markdown, and the table is printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psutil
import tomli_w
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.workloads import WORKLOADS

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PARTITIONS = 6
BENCH_PORT = os.environ.get("BENCH_KAFKA_PORT", "29092")
RECORDS = {
    "quick": {"W1": 300_000, "W2": 100_000, "W3": 300_000},
    "full": {"W1": 1_000_000, "W2": 400_000, "W3": 1_000_000},
}
DEADLINE_S = 1800


@dataclass
class Result:
    system: str
    workload: str
    records: int
    input_bytes: int
    elapsed_s: float
    cpu_s: float
    peak_rss_bytes: int
    output_bytes: int
    files: int
    rss_series: list[tuple[float, int]] = field(default_factory=list)

    @property
    def records_per_s(self) -> float:
        return self.records / self.elapsed_s

    @property
    def mb_per_s(self) -> float:
        return self.input_bytes / self.elapsed_s / 1e6


class RssSampler:
    """Samples a process's RSS every 50 ms in a thread; keeps the peak and the series."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._started = time.monotonic()
        self.peak = 0
        self.series: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self._process.memory_info().rss
            except psutil.Error:
                return
            self.peak = max(self.peak, rss)
            self.series.append((round(time.monotonic() - self._started, 2), rss))
            self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# --- broker and data ----------------------------------------------------------------------------


def start_broker() -> tuple[str, bool]:
    env = {**os.environ, "KAFKA_LOCAL_PORT": BENCH_PORT}
    script = [sys.executable, str(REPO / "scripts" / "kafka-local")]
    running = subprocess.run([*script, "status"], env=env, capture_output=True, check=False).returncode == 0
    if not running:
        subprocess.run([*script, "start"], env=env, check=True)
    return f"127.0.0.1:{BENCH_PORT}", not running


def stop_broker() -> None:
    env = {**os.environ, "KAFKA_LOCAL_PORT": BENCH_PORT}
    subprocess.run([sys.executable, str(REPO / "scripts" / "kafka-local"), "stop"], env=env, check=True)


def produce(bootstrap: str, workload: str, count: int) -> tuple[str, int]:
    topic = f"bench-{workload}-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(timeout=60)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000, "compression.type": "lz4"}
    )
    total = 0
    for index, value in enumerate(WORKLOADS[workload].values(count)):
        total += len(value)
        while True:
            try:
                producer.produce(topic, value, partition=index % PARTITIONS)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120) != 0:
        raise RuntimeError("records were not delivered")
    return topic, total


def committed_everything(bootstrap: str, group: str, topic: str) -> bool:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        committed = consumer.committed(partitions, timeout=10)
        ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions]
        return [item.offset for item in committed] == ends
    finally:
        consumer.close()


# --- systems -------------------------------------------------------------------------------------


def run_ceiling(system: str, workload: str, arguments: list[str]) -> Result:
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.ceilings", *arguments], stdout=subprocess.PIPE, cwd=REPO
    )
    sampler = RssSampler(child.pid)
    output, _ = child.communicate(timeout=DEADLINE_S)
    sampler.stop()
    if child.returncode != 0:
        raise RuntimeError(f"{system} failed with exit code {child.returncode}")
    data = orjson.loads(output)
    return Result(system, workload, rss_series=sampler.series, **data)


def archiver_settings(bootstrap: str, topic: str, group: str, root: Path) -> dict[str, Any]:
    """The archiver's benchmark settings: defaults, but files finish 0.5 s after the last record."""
    return {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "group_id": group,
            "topics": [topic],
            "poll_timeout_s": 0.1,
        },
        "output": {"root": str(root)},
        "rotation": {"file_max_idle_s": 0.5, "row_group_max_bytes": 32 * 1024 * 1024},
        "memory": {"max_buffered_bytes": 256 * 1024 * 1024},
        "stats": {"interval_s": 5.0},
    }


def run_archiver(
    bootstrap: str, workload: str, topic: str, records: int, input_bytes: int, work: Path
) -> Result:
    group = f"bench-archiver-{uuid.uuid4().hex[:8]}"
    root = work / f"archive-{workload}"
    config = work / f"archiver-{workload}.toml"
    config.write_text(tomli_w.dumps(archiver_settings(bootstrap, topic, group, root)))
    log = (work / f"archiver-{workload}.log").open("wb")
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-m", "consumer", "--log-format", "json", "run", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    sampler = RssSampler(child.pid)
    process = psutil.Process(child.pid)
    while not committed_everything(bootstrap, group, topic):
        if child.poll() is not None or time.monotonic() - started > DEADLINE_S:
            raise RuntimeError(f"the archiver stopped or timed out; see {log.name}")
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    times = process.cpu_times()
    sampler.stop()
    child.terminate()
    child.wait(timeout=120)
    files = list(root.glob("**/*.parquet"))
    return Result(
        "c archiver",
        workload,
        records,
        input_bytes,
        elapsed,
        times.user + times.system,
        sampler.peak,
        sum(path.stat().st_size for path in files),
        len(files),
        sampler.series,
    )


# --- report ----------------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    lines = [
        "| workload | system | records/s | input MB/s | peak RSS MiB | CPU s | output MB | files |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        lines.append(
            f"| {result.workload} | {result.system} | {result.records_per_s:,.0f} | {result.mb_per_s:.1f} | "
            f"{result.peak_rss_bytes / 2**20:,.0f} | {result.cpu_s:.1f} | {result.output_bytes / 1e6:.1f} | "
            f"{result.files} |"
        )
    return "\n".join(lines)


def ratios(results: list[Result]) -> str:
    lines = []
    for workload in dict.fromkeys(result.workload for result in results):
        by_system = {result.system.split()[0]: result for result in results if result.workload == workload}
        if {"a", "b", "c"} <= by_system.keys():
            ceiling = min(by_system["a"].records_per_s, by_system["b"].records_per_s)
            share = by_system["c"].records_per_s / ceiling
            lines.append(f"- {workload}: archiver / min(consume, encode) = {share:.0%}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer records: minutes instead of tens of minutes"
    )
    parser.add_argument("--workloads", default="W1,W2", help="comma-separated, of W1, W2, W3 (default W1,W2)")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    bootstrap, started_broker = start_broker()
    work = Path(tempfile.mkdtemp(prefix="kpa-bench-", dir=os.environ.get("BENCH_WORK")))
    results: list[Result] = []
    try:
        for workload in args.workloads.split(","):
            count = RECORDS[mode][workload]
            topic, input_bytes = produce(bootstrap, workload, count)
            print(
                f"{workload}: produced {count:,} records ({input_bytes / 1e6:.0f} MB) into {topic}",
                flush=True,
            )
            results.append(
                run_ceiling(
                    "a consume ceiling",
                    workload,
                    ["consume", "--bootstrap", bootstrap, "--topic", topic, "--records", str(count)],
                )
            )
            if workload != "W3":  # churning keys have no fixed schema to encode against
                results.append(
                    run_ceiling(
                        "b encode ceiling",
                        workload,
                        ["encode", "--workload", workload, "--records", str(count), "--out", str(work)],
                    )
                )
            results.append(run_archiver(bootstrap, workload, topic, count, input_bytes, work))
            print(table([r for r in results if r.workload == workload]), flush=True)
    finally:
        if started_broker:
            stop_broker()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = f"# Benchmark {stamp} ({mode})\n\n{table(results)}\n\n{ratios(results)}\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stamp}-{mode}.md").write_text(report)
    (RESULTS / f"{stamp}-{mode}.json").write_bytes(
        orjson.dumps(
            [{**asdict(r), "records_per_s": r.records_per_s, "mb_per_s": r.mb_per_s} for r in results]
        )
    )
    print("\n" + report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
