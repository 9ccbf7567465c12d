"""Deterministic record generators: the same seed gives the same bytes on every run and machine.

W1: flat ~300-byte event maps. W2: ~1 KB nested maps with arrays. W3: churning keys: a stable
typed core plus 3-5 keys drawn from a universe of one million, and a few keys whose type flips.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

KEY_UNIVERSE = 1_000_000


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    make: Callable[[int, random.Random], dict[str, Any]]

    def values(self, count: int, seed: int = 42) -> Iterator[bytes]:
        rng = random.Random(seed)
        for index in range(count):
            yield orjson.dumps(self.make(index, rng))


def flat_event(index: int, rng: random.Random) -> dict[str, Any]:
    return {
        "event_id": index,
        "user_id": rng.randint(1, 10**6),
        "session": f"s-{rng.getrandbits(32):08x}",
        "event_type": rng.choice(("click", "view", "purchase", "scroll")),
        "ts": 1_700_000_000_000 + index,
        "price": round(rng.random() * 100, 2),
        "currency": "EUR",
        "country": rng.choice(("DE", "FR", "US", "GB")),
        "is_mobile": rng.random() < 0.5,
        "page": f"/p/{rng.randint(1, 5000)}",
        "referrer": "https://example.com/" + "x" * rng.randint(10, 40),
        "ua": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
    }


def nested_order(index: int, rng: random.Random) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {
            "sku": f"sku-{rng.randint(1, 10**6)}",
            "qty": rng.randint(1, 5),
            "price": round(rng.random() * 100, 2),
            "attrs": {
                "color": rng.choice(("red", "blue", "green")),
                "size": rng.choice(("S", "M", "L", "XL")),
            },
        }
        for _ in range(rng.randint(2, 5))
    ]
    return {
        "order_id": index,
        "customer": {
            "id": rng.randint(1, 10**6),
            "name": f"Customer {rng.randint(1, 10**5)}",
            "email": f"c{rng.randint(1, 10**6)}@example.com",
            "address": {
                "street": f"{rng.randint(1, 300)} Main Street",
                "city": rng.choice(("Berlin", "Paris", "Oslo", "Lyon")),
                "zip": f"{rng.randint(0, 99999):05d}",
                "country": rng.choice(("DE", "FR", "NO")),
            },
        },
        "items": items,
        "total": round(sum(item["price"] * item["qty"] for item in items), 2),
        "currency": "EUR",
        "status": rng.choice(("new", "paid", "shipped")),
        "tags": rng.sample(["gift", "express", "promo", "b2b", "return"], rng.randint(0, 3)),
        "created_at": f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z",
        "notes": "n" * rng.randint(50, 200),
    }


def churning_keys(index: int, rng: random.Random) -> dict[str, Any]:
    record: dict[str, Any] = {
        "device": f"d-{rng.randint(1, 5000)}",
        "seq": index,
        "ts": 1_700_000_000_000 + index,
        "ok": rng.random() < 0.9,
    }
    for _ in range(rng.randint(3, 5)):
        record[f"sensor_{rng.randrange(KEY_UNIVERSE)}"] = round(rng.random() * 1000, 3)
    flip = index % 10
    record["reading"] = str(index) if flip == 0 else index  # int, now and then a string
    record["level"] = 0.5 * index if flip == 1 else index  # int, now and then a float
    return record


WORKLOADS = {
    "W1": Workload("W1", "flat ~300-byte event maps", flat_event),
    "W2": Workload("W2", "~1 KB nested maps with arrays", nested_order),
    "W3": Workload("W3", "churning keys (3-5 of 1M per record) and type flips", churning_keys),
}
