"""The benchmark's rate of (c) while records flowed: read from its stats events, shown beside the targets."""

from __future__ import annotations

from pathlib import Path

import orjson

from bench.measure import Result
from bench.progress import flowing_rate
from bench.report import Run, flowing_table, markdown


def _log(tmp_path: Path, points: list[tuple[str, int]]) -> Path:
    lines = [b"Traceback-free noise that is not JSON", orjson.dumps({"event": "daemon_started"})]
    lines += [
        orjson.dumps({"event": "stats", "records_in": taken, "timestamp": f"2026-11-27T10:00:{at}Z"})
        for at, taken in points
    ]
    path = tmp_path / "archiver.log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _result(system: str, records_per_s: float, flowing: float | None = None) -> Result:
    return Result(system, "W1", 1000, 300_000, 1000 / records_per_s, 1.0, 2**20, 0, 0,
                  flowing_records_per_s=flowing)  # fmt: skip


class TestFlowingRate:
    def test_rate_between_the_first_and_last_event_inside_ten_to_ninety_percent(self, tmp_path: Path) -> None:
        """Events at 5% and 100% are left out: (800 - 200) records over 2 s."""
        log = _log(tmp_path, [("01", 50), ("02", 200), ("03", 500), ("04", 800), ("05", 1000)])
        assert flowing_rate(log, 1000) == 300.0

    def test_none_with_fewer_than_two_events_inside(self, tmp_path: Path) -> None:
        """A run too short for two events between 10% and 90% has no rate."""
        log = _log(tmp_path, [("01", 50), ("02", 500), ("03", 1000)])
        assert flowing_rate(log, 1000) is None


class TestFlowingTable:
    def test_shares_the_slower_ceiling_of_the_same_workload(self) -> None:
        """(c) flowing at 150 against ceilings at 500 and 200 is 75%; its end-to-end rate is shown too."""
        results = [_result("a consume ceiling", 500), _result("b encode ceiling", 200),
                   _result("c archiver", 100, flowing=150)]  # fmt: skip
        assert flowing_table(results).splitlines()[-1] == "| W1 | 100 | 150 | 75% |"

    def test_left_out_of_the_report_without_a_flowing_rate(self) -> None:
        """Runs without stats (or too short) add no section to the report."""
        results = [_result("a consume ceiling", 500), _result("c archiver", 100)]
        run = Run("20261127T000000Z", "quick", "python -m bench.run", {}, 0.5, 1.0)
        assert flowing_table(results) == ""
        assert "while records flowed" not in markdown(run, results)
