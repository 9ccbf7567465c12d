"""Varied JSON objects with a sprinkling of bad values and tombstones, and what the archive must hold."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import orjson

from tests.support.archive import without_nulls
from tests.support.kafka_tools import produce

Record = tuple[int, bytes | None, bytes | None]


def varied_object(index: int, rng: random.Random) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": index,
        "user": f"user-{rng.randint(1, 50)}",
        "amount": round(rng.uniform(0, 500), 2),
        "active": rng.random() < 0.5,
        "tags": rng.sample(["a", "b", "c", "d"], rng.randint(0, 3)),
        "address": {"city": rng.choice(["Berlin", "Lyon", "Oslo"]), "zip": f"{rng.randint(0, 99999):05d}"},
        "note": None if index % 5 == 0 else f"note {index} é 字",
    }
    if index % 7 == 0:
        record[f"sensor_{index}"] = rng.random()  # a key almost never seen twice
    if index % 11 == 0:
        record["amount"] = str(record["amount"])  # a type flip
    if index % 13 == 0:
        record["ratio.v2/x"] = index / 3
    return record


def produce_mixed(
    bootstrap: str, topic: str, partitions: int, count: int
) -> tuple[dict[tuple[int, int], dict[str, Any]], dict[tuple[int, int], str]]:
    """Produce good objects with a sprinkling of bad values; return what each (partition, offset) holds."""
    rng = random.Random(7)
    bad: list[tuple[bytes | None, str]] = [
        (b"{not json", "invalid_json"),
        (b"[1, 2, 3]", "not_an_object"),
        (b'"just a string"', "not_an_object"),
        (b'{"text": "\xff\xfe"}', "invalid_utf8"),
        (b'{"pad": "' + b"x" * 5000 + b'"}', "oversize"),
        (b"", "invalid_json"),
    ]
    records: list[Record] = []
    good: dict[tuple[int, int], dict[str, Any]] = {}
    rejected: dict[tuple[int, int], str] = {}
    next_offset = Counter[int]()
    for index in range(count):
        partition = index % partitions
        offset = next_offset[partition]
        next_offset[partition] += 1
        if index % 97 == 3:
            value, reason = bad[(index // 97) % len(bad)]
            rejected[(partition, offset)] = reason
        elif index % 151 == 5:
            value = None  # a tombstone: counted and skipped
        else:
            obj = varied_object(index, rng)
            good[(partition, offset)] = without_nulls(obj)
            value = orjson.dumps(obj)
        records.append((partition, str(index).encode(), value))
    produce(bootstrap, topic, records)
    return good, rejected
