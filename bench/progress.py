"""How fast the archiver took records while they flowed, read from its own `stats` events.

(c) is timed from process start until every offset is committed: that span includes its start-up
and, at the end, the idle timeout and the last row groups. Its `stats` events, which carry the
cumulative `records_in`, show the rate in between: from the first event at or past 10% of the
topic to the last event at or below 90%.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson

LOW, HIGH = 0.1, 0.9


def flowing_rate(log: Path, records: int) -> float | None:
    """Records/s between the stats events inside [10%, 90%] of `records`; None with fewer than two."""
    inside = [(at, taken) for at, taken in _stats(log) if LOW * records <= taken <= HIGH * records]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    (first_at, first_taken), (last_at, last_taken) = inside[0], inside[-1]
    return (last_taken - first_taken) / (last_at - first_at)


def _stats(log: Path) -> list[tuple[float, int]]:
    """(wall time, records_in) of every `stats` event in a JSON-lines log; other lines are skipped."""
    points: list[tuple[float, int]] = []
    for line in log.read_bytes().splitlines():
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict) and event.get("event") == "stats":
            points.append((datetime.fromisoformat(event["timestamp"]).timestamp(), int(event["records_in"])))
    return points
