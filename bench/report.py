"""The run's report: the machine, the results table, the target ratios, and where they are written.

Every comparison is a ratio within one run: the machine is shared, so absolute numbers move
between runs while ratios of systems measured minutes apart move much less. With repeated rounds,
each system is represented by its median run (by records/s), or by a failed run if it had one.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import confluent_kafka
import orjson

from bench.measure import Result

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Run:
    """What was run, where, and how: the report's header."""

    stamp: str
    mode: str
    command: str
    machine: dict[str, str]
    archiver_idle_s: float
    quix_commit_interval_s: float

    @property
    def name(self) -> str:
        return f"{self.stamp}-{self.mode}"


@dataclass(frozen=True)
class Target:
    """One target ratio on one workload; `value` is None when a side has no measurement."""

    workload: str
    name: str
    value: float | None
    bound: float
    at_least: bool
    form: str
    missing: str

    @property
    def met(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.bound if self.at_least else self.value <= self.bound

    @property
    def goal(self) -> str:
        return (">= " if self.at_least else "<= ") + self.form.format(self.bound)

    @property
    def shown(self) -> str:
        return "-" if self.value is None else self.form.format(self.value)

    @property
    def status(self) -> str:
        if self.value is None:
            return f"not measured ({self.missing})"
        return "met" if self.met else "not met"


# --- machine -------------------------------------------------------------------------------------


def _proc_field(path: str, key: str) -> str:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return ""
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(key)), "")


def machine(quix: dict[str, str]) -> dict[str, str]:
    """CPU, cores, memory and the versions of everything measured (Quix's from its own virtualenv)."""
    memory_kib = _proc_field("/proc/meminfo", "MemTotal").split()
    return {
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor(),
        "cores": str(os.cpu_count()),
        "memory": f"{int(memory_kib[0]) / 2**20:.1f} GiB" if memory_kib else "unknown",
        "python": platform.python_version(),
        "pyarrow": version("pyarrow"),
        "confluent-kafka": version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "quixstreams": quix.get("quixstreams", "not installed"),
        "quix env": ", ".join(f"{name} {value}" for name, value in quix.items() if name != "quixstreams"),
    }


# --- median runs ---------------------------------------------------------------------------------


def representatives(results: list[Result]) -> list[Result]:
    """One result per workload and system: a failed run if any failed, else the median by records/s
    (the lower of the two middle ones for an even count), in the order the systems first ran."""
    return [_representative(group) for group in _rounds_by_system(results)]


def _rounds_by_system(results: list[Result]) -> list[list[Result]]:
    """The results grouped by workload and system, each group in round order."""
    runs: dict[tuple[str, str], list[Result]] = {}
    for result in results:
        runs.setdefault((result.workload, result.system), []).append(result)
    return list(runs.values())


def _representative(group: list[Result]) -> Result:
    failed = [result for result in group if not result.ok]
    if failed:
        return failed[0]
    ranked = sorted(group, key=_throughput)
    return ranked[(len(ranked) - 1) // 2]


def _rounds(results: list[Result]) -> int:
    return max((result.round for result in results), default=1)


# --- tables --------------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    """The median run of each system; with several rounds, every round's records/s too."""
    repeated = _rounds(results) > 1
    lines = [
        "| workload | system | records/s | input MB/s | peak RSS MiB | CPU s | output MB | files |"
        + (" records/s of each round |" if repeated else ""),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |" + (" --- |" if repeated else ""),
    ]
    for group in _rounds_by_system(results):
        row = _row(_representative(group))
        if repeated:
            row += " " + ", ".join(_round_rate(result) for result in group) + " |"
        lines.append(row)
    return "\n".join(lines)


def _round_rate(result: Result) -> str:
    return f"{result.records_per_s / 1000:.0f}k" if result.ok else "failed"


def _row(result: Result) -> str:
    head = f"| {result.workload} | {result.system} |"
    if not result.ok:
        peak = f"{result.peak_rss_bytes / 2**20:,.0f}" if result.peak_rss_bytes else "-"
        return f"{head} failed: {_cell(result.error)} | - | {peak} | - | - | - |"
    return (
        f"{head} {result.records_per_s:,.0f} | {result.mb_per_s:.1f} | "
        f"{result.peak_rss_bytes / 2**20:,.0f} | {result.cpu_s:.1f} | {result.output_bytes / 1e6:.1f} | "
        f"{result.files} |"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def targets(results: list[Result]) -> list[Target]:
    """The target ratios of each workload, between the systems' median runs."""
    found: list[Target] = []
    for workload, by in _by_letter(representatives(results)).items():
        found += _workload_targets(workload, by)
    return found


def _by_letter(shown: list[Result]) -> dict[str, dict[str, Result]]:
    """Each workload's runs by system letter, in the order the workloads ran."""
    found: dict[str, dict[str, Result]] = {}
    for result in shown:
        found.setdefault(result.workload, {})[result.system.split()[0]] = result
    return found


def _slower_ceiling(by: dict[str, Result]) -> Result | None:
    ceilings = [by[letter] for letter in ("a", "b") if letter in by]
    return min(ceilings, key=_throughput) if ceilings else None


def _workload_targets(workload: str, by: dict[str, Result]) -> list[Target]:
    archiver, quix, ceiling = by.get("c"), by.get("d"), _slower_ceiling(by)
    floor = "(c) / min((a), (b))" if "a" in by and "b" in by else "(c) / (a) (no (b) here)"
    versus_quix = _missing(archiver, quix)
    return [
        Target(workload, "(c) / (d) records/s", _ratio(archiver, quix, _throughput), 3, True, "{:.1f}x",
               versus_quix),
        Target(workload, "(c) / (d) peak RSS", _ratio(archiver, quix, _peak_rss), 0.5, False, "{:.2f}",
               versus_quix),
        Target(workload, f"{floor} records/s", _ratio(archiver, ceiling, _throughput), 0.7, True, "{:.0%}",
               _missing(archiver, ceiling)),
    ]  # fmt: skip


def _throughput(result: Result) -> float:
    return result.records_per_s


def _peak_rss(result: Result) -> float:
    return float(result.peak_rss_bytes)


def _ratio(top: Result | None, bottom: Result | None, measure: Callable[[Result], float]) -> float | None:
    if top is None or bottom is None or not (top.ok and bottom.ok) or measure(bottom) == 0:
        return None
    return measure(top) / measure(bottom)


def _missing(*results: Result | None) -> str:
    reasons = [f"{r.system.split()[0]} failed" for r in results if r is not None and not r.ok]
    return ", ".join(reasons) or "not run"


def flowing_table(results: list[Result]) -> str:
    """(c)'s median run end to end and while records flowed, against the slower ceiling; empty
    when no run has a rate while flowing (bench/progress.py)."""
    lines = [
        "| workload | (c) end to end | (c) while records flowed | (c) flowing / slower ceiling |",
        "| --- | ---: | ---: | ---: |",
    ]
    for workload, by in _by_letter(representatives(results)).items():
        archiver, ceiling = by.get("c"), _slower_ceiling(by)
        if archiver is None or archiver.flowing_records_per_s is None:
            continue
        flowing = archiver.flowing_records_per_s
        share = f"{flowing / ceiling.records_per_s:.0%}" if ceiling and ceiling.records_per_s else "-"
        lines.append(f"| {workload} | {archiver.records_per_s:,.0f} | {flowing:,.0f} | {share} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def targets_table(found: list[Target]) -> str:
    lines = ["| workload | ratio | value | target | status |", "| --- | --- | ---: | --- | --- |"]
    for t in found:
        lines.append(f"| {t.workload} | {t.name} | {t.shown} | {t.goal} | {t.status} |")
    return "\n".join(lines)


# --- files ---------------------------------------------------------------------------------------


NOTES = """Notes:
- (a) times from subscribe to the last record and (b) encodes values already in memory; (c) and (d)
  include interpreter start-up and the group join, so (c) / min((a), (b)) is conservative. CPU s
  covers the same span: (a) and (b) their measured loop, (c) and (d) the whole process.
- (d) runs in its own virtualenv (quixstreams pins confluent-kafka < 2.13): see "quix env" above.
- (d)'s default commit_interval (bench/systems.py) gave its best throughput on W1 quick on this
  machine among 0.5, 1, 2, 5, 10, 15 and 30 s; each checkpoint writes one file per partition.
- (d), quixstreams 3.28, writes `_key` as the repr of its SinkItem for records without a key (all
  of these), a high-cardinality string column that adds to its output bytes.
"""


def markdown(run: Run, results: list[Result]) -> str:
    machine_lines = "\n".join(f"- {name}: {value}" for name, value in run.machine.items())
    return (
        f"# Benchmark {run.stamp} ({run.mode})\n\n"
        f"Command: `{run.command}`\n\n"
        f"Machine:\n{machine_lines}\n\n"
        "Systems: (a) consume ceiling, (b) encode ceiling, (c) kafka-parquet-archiver, "
        f"file_max_idle_s={run.archiver_idle_s:g} s, (d) Quix Streams "
        f"LocalFileSink + ParquetFormat(zstd), commit_interval={run.quix_commit_interval_s:g} s. "
        "(c) and (d): process start until every offset is committed; RSS sampled every 50 ms. "
        f"{_rounds_sentence(_rounds(results))}\n\n"
        f"{table(results)}\n\n"
        f"Targets:\n\n{targets_table(targets(results))}\n\n"
        f"{_flowing_section(flowing_table(results), run.archiver_idle_s)}"
        f"{NOTES}\n"
        f"![throughput and RSS]({run.name}.png)\n"
    )


def _flowing_section(rows: str, idle_s: float) -> str:
    if not rows:
        return ""
    return (
        "Not a target: (c) without its start-up and finish. Its stats events (one a second, cumulative "
        "records taken) give its rate from the first event at or past 10% of the topic to the last at "
        "or below 90%; "
        f"the end-to-end time also holds the process start-up, the group join, the {idle_s:g} s idle "
        f"timeout and the last row groups.\n\n{rows}\n\n"
    )


def _rounds_sentence(rounds: int) -> str:
    if rounds == 1:
        return "One round: each system ran once."
    return (
        f"{rounds} interleaved rounds (a, b, c, d, a, b, c, d, ...): each row is the system's median "
        "run by records/s, and the targets compare median runs."
    )


def _target_json(target: Target) -> dict[str, Any]:
    return {**asdict(target), "goal": target.goal, "met": target.met, "status": target.status}


def write(run: Run, results: list[Result], report: str) -> Path:
    """Write <stamp>-<mode>.json and .md and latest.md; return the path the chart belongs at."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{run.name}.md").write_text(report)
    (RESULTS / "latest.md").write_text(report)
    rows = [{**asdict(r), "records_per_s": r.records_per_s, "mb_per_s": r.mb_per_s} for r in results]
    document = {**asdict(run), "results": rows, "targets": [_target_json(t) for t in targets(results)]}
    (RESULTS / f"{run.name}.json").write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return RESULTS / f"{run.name}.png"
