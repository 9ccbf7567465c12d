"""A bounded, decaying count of how many rows carried each key: the evidence for promoting a key.

Producers that invent keys (one per sensor id) must not grow this without bound: at most
2 x capacity keys are tracked, and only the `capacity` most frequent survive a trim. Counts and
the row total halve every DECAY_ROWS sampled rows, so the counter follows what producers send now.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from itertools import chain
from typing import Any

SAMPLE_ROWS = 128  # at most this many rows of a batch have their keys counted, evenly spread
DECAY_ROWS = 25_000  # counts halve after this many sampled rows


class KeyCounter:
    """Approximate counts of how many sampled rows carried each key, in bounded memory.

    At most 2 x capacity keys are tracked; past that, only the `capacity` most frequent survive.
    Counts and the row total halve every DECAY_ROWS sampled rows, so the counter follows what
    producers send now.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._counts: Counter[str] = Counter()
        self.rows = 0

    def __len__(self) -> int:
        return len(self._counts)

    def observe(self, rows: list[dict[str, Any]]) -> None:
        """Count the keys of a sample of the rows."""
        sample = rows[:: _step(len(rows))]
        self._counts.update(chain.from_iterable(sample))
        self._add_rows(len(sample))

    def observe_alike(self, keys: Iterable[str], rows: int) -> None:
        """Count as observe() would rows that all carry exactly these keys, without reading them."""
        if rows:
            sampled = len(range(0, rows, _step(rows)))
            self._counts.update(dict.fromkeys(keys, sampled))
            self._add_rows(sampled)

    def _add_rows(self, sampled: int) -> None:
        self.rows += sampled
        if len(self._counts) > 2 * self._capacity:
            self._counts = Counter(dict(heapq.nlargest(self._capacity, self._counts.items(), key=_count)))
        if self.rows > DECAY_ROWS:
            self._counts = Counter({key: count // 2 for key, count in self._counts.items() if count > 1})
            self.rows //= 2

    def count(self, key: str) -> int:
        return self._counts.get(key, 0)


def _step(rows: int) -> int:
    """The distance between sampled rows: at most SAMPLE_ROWS of a batch, evenly spread."""
    return max(1, -(-rows // SAMPLE_ROWS))  # rounded up


def _count(item: tuple[str, int]) -> int:
    return item[1]
