"""The soak's outputs: the samples as CSV, RSS and Arrow bytes over records as PNG, the verdict as text.

Each run writes bench/results/soak-<name>.{csv,png,md} and copies them to soak-latest.*.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.report import RESULTS
from bench.soak_checks import END, MIB, QUARTER, Check, Sample

SUFFIXES = ("csv", "png", "md")


@dataclass(frozen=True, slots=True)
class SoakRun:
    """What was measured: the run's name, its settings and its headline numbers."""

    name: str
    command: str
    records: int
    allocator: str
    budget_bytes: int
    row_group_bytes: int
    headroom_bytes: int
    elapsed_s: float
    machine: dict[str, str]
    overrides: dict[str, str]  # ARCHIVER_* variables the daemon inherited

    @property
    def records_per_s(self) -> float:
        return self.records / self.elapsed_s if self.elapsed_s > 0 else 0.0


def summary(run: SoakRun, samples: list[Sample], checks: list[Check], growth: str) -> str:
    """The verdict as printed: one line per criterion, met or not met, with the numbers."""
    peak = max(sample.rss_bytes for sample in samples)
    arrow_peak = max(sample.arrow_peak_bytes for sample in samples)
    lines = [
        f"soak {run.name}: {run.records:,} W3 records, allocator {run.allocator}, "
        f"memory.max_buffered_bytes {run.budget_bytes / MIB:.0f} MiB, "
        f"rotation.row_group_max_bytes {run.row_group_bytes / MIB:.0f} MiB",
        f"all committed after {run.elapsed_s:,.1f} s: {run.records_per_s:,.0f} records/s; "
        f"last RSS sample {samples[-1].rss_bytes / MIB:,.1f} MiB, largest {peak / MIB:,.1f} MiB; "
        f"Arrow pool peak {arrow_peak / MIB:,.1f} MiB",
        *(f"settings from the environment: {name}={value}" for name, value in sorted(run.overrides.items())),
        *(f"[{'met' if check.met else 'not met'}] {check.name}: {check.detail}" for check in checks),
        growth,
    ]
    return "\n".join(lines)


def write(run: SoakRun, samples: list[Sample], text: str) -> Path:
    """Write the CSV, the chart and the summary, and copy them to soak-latest.*; return the CSV."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    base = RESULTS / f"soak-{run.name}"
    _write_csv(base.with_suffix(".csv"), samples)
    _draw(base.with_suffix(".png"), run, samples)
    machine = "\n".join(f"- {key}: {value}" for key, value in run.machine.items())
    base.with_suffix(".md").write_text(
        f"# Soak {run.name}\n\nCommand: `{run.command}`\n\nMachine:\n{machine}\n\n"
        f"```text\n{text}\n```\n\n![RSS and Arrow bytes](soak-{run.name}.png)\n"
    )
    for suffix in SUFFIXES:
        shutil.copyfile(base.with_suffix(f".{suffix}"), RESULTS / f"soak-latest.{suffix}")
    return base.with_suffix(".csv")


def _write_csv(path: Path, samples: list[Sample]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([field.name for field in fields(Sample)])
        writer.writerows(astuple(sample) for sample in samples)


def _draw(path: Path, run: SoakRun, samples: list[Sample]) -> None:
    figure = Figure(figsize=(10, 5.5), layout="constrained")
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    millions = [sample.records_in / 1e6 for sample in samples]
    _line(axis, millions, [sample.rss_bytes for sample in samples], "RSS (psutil, every second)", "#1f77b4")
    _line(axis, millions, [sample.arrow_bytes for sample in samples], "Arrow pool bytes", "#ff7f0e")
    _line(axis, millions, [sample.buffered_bytes for sample in samples], "buffered row data", "#2ca02c")
    limit = (run.budget_bytes + run.headroom_bytes) / MIB
    axis.axhline(limit, color="#d62728", linestyle="--", label=f"peak RSS limit ({limit:.0f} MiB)")
    for low, high in (QUARTER, END):
        axis.axvspan(low * run.records / 1e6, high * run.records / 1e6, color="#7f7f7f", alpha=0.12)
    axis.set_xlabel("records consumed (millions); shaded: the windows compared (25% and the end)")
    axis.set_ylabel("MiB")
    axis.set_ylim(bottom=0)
    axis.legend(fontsize="small", loc="center right")
    figure.suptitle(
        f"soak {run.name}\n{run.records:,} churning-key records (W3), allocator {run.allocator}, "
        f"buffer budget {run.budget_bytes / MIB:.0f} MiB, row groups {run.row_group_bytes / MIB:.0f} MiB",
        fontsize="medium",
    )
    figure.savefig(path, dpi=100)


def _line(axis: Axes, x: list[float], values: list[int], label: str, color: str) -> None:
    axis.plot(x, [value / MIB for value in values], label=label, color=color, linewidth=1.2)
