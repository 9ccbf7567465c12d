"""One PNG per run: records/s per system and workload, and each system's sampled RSS over time,
both of each system's median run (report.representatives).

Drawn with matplotlib's Agg canvas directly (no pyplot, no global backend state).
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from bench.measure import Result
from bench.report import representatives

COLORS = {"a": "#7f7f7f", "b": "#bcbd22", "c": "#1f77b4", "d": "#d62728"}


def _color(result: Result) -> str:
    return COLORS.get(result.system.split()[0], "#000000")


def draw(results: list[Result], path: Path, title: str) -> None:
    results = representatives(results)
    workloads = list(dict.fromkeys(result.workload for result in results))
    figure = Figure(figsize=(5.5 * (1 + len(workloads)), 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 1 + len(workloads), squeeze=False)[0]
    _throughput(axes[0], results, workloads)
    for axis, workload in zip(axes[1:], workloads, strict=True):
        _rss(axis, [result for result in results if result.workload == workload], workload)
    figure.suptitle(title)
    figure.savefig(path, dpi=100)


def _throughput(axis: Axes, results: list[Result], workloads: list[str]) -> None:
    systems = list(dict.fromkeys(result.system for result in results))
    width = 0.8 / len(systems)
    for index, system in enumerate(systems):
        for position, workload in enumerate(workloads):
            result = next((r for r in results if r.system == system and r.workload == workload), None)
            if result is not None:
                _bar(axis, position + (index - (len(systems) - 1) / 2) * width, width, result)
    axis.set_xticks(range(len(workloads)), workloads)
    axis.set_ylabel("records/s")
    axis.set_title("throughput (higher is better)")
    colors = {result.system: _color(result) for result in results}
    axis.legend(handles=[Patch(color=c, label=s) for s, c in colors.items()], fontsize="small")


def _bar(axis: Axes, x: float, width: float, result: Result) -> None:
    axis.bar(x, result.records_per_s, width, color=_color(result))
    label = f"{result.records_per_s / 1000:.0f}k" if result.ok else "failed"
    axis.annotate(label, (x, result.records_per_s), ha="center", va="bottom", fontsize="x-small")


def _rss(axis: Axes, results: list[Result], workload: str) -> None:
    for result in results:
        seconds = [t for t, _ in result.rss_series]
        mib = [rss / 2**20 for _, rss in result.rss_series]
        label = result.system if result.ok else f"{result.system} (failed)"
        axis.plot(seconds, mib, color=_color(result), label=label, linestyle="-" if result.ok else "--")
    axis.set_xlabel("seconds since process start")
    axis.set_ylabel("RSS MiB")
    axis.set_title(f"{workload}: RSS sampled every 50 ms")
    axis.legend(fontsize="small")
