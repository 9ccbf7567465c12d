"""The sample producer: a reproducible stream of e-commerce events for trying out the archiver.

Every record is a valid JSON object of the kind a web shop emits: page views, searches, cart
changes and purchases, with ids, a user, prices, a nested address, arrays of tags and line items,
and a few keys that only some records carry (coupon codes, A/B-test assignments), so the archive
shows typed columns, JSON columns and `_extra`. The records depend only on the seed and their
position: the same seed gives the same records, keys and event times (which start at
SAMPLE_EPOCH_MS; the Kafka timestamp is the time of producing).
"""

from __future__ import annotations

import random
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any, TextIO

import orjson

from consumer.clock import Clock, SystemClock
from consumer.config import Settings
from consumer.errors import ConfigError, ExitCode, FatalError
from consumer.kafka.producer import KafkaProducer

SAMPLE_EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
PROGRESS_INTERVAL_S = 10.0
MAX_WAIT_S = 0.5  # longest single wait between records, so a signal is noticed quickly

CATEGORIES = ("books", "electronics", "garden", "toys", "fashion", "grocery", "sports")
CURRENCIES = ("EUR", "EUR", "EUR", "USD", "GBP")
PAGES = ("/", "/deals", "/account", "/help", "/category/{category}", "/cart")
SEARCHES = ("usb c cable", "running shoes", "lego", "coffee beans", "garden hose", "kindle", "yoga mat")
TAGS = ("mobile", "desktop", "returning", "new_customer", "newsletter", "prime", "gift", "sale")
PAYMENT_METHODS = ("card", "card", "paypal", "klarna", "apple_pay")
CITIES = (
    ("Berlin", "DE", "10115", "Torstraße"),
    ("Hamburg", "DE", "20095", "Mönckebergstraße"),
    ("Lyon", "FR", "69002", "Rue de la République"),
    ("Oslo", "NO", "0150", "Karl Johans gate"),
    ("Kraków", "PL", "31-042", "Floriańska"),
    ("Dublin", "IE", "D02", "Grafton Street"),
)
DEVICES = (
    ("mobile", "iOS", "17.5"),
    ("mobile", "Android", "14"),
    ("desktop", "Windows", "11"),
    ("tablet", "iPadOS", "17.4"),
)
EXPERIMENTS = 300  # A/B tests run at once; each one's key is rare, so it stays in `_extra`


class SampleEvents:
    """An endless, deterministic stream of (key, JSON value) pairs for one seed."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - sample data must be reproducible, not secret
        self._time_ms = SAMPLE_EPOCH_MS
        self._index = 0

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return self

    def __next__(self) -> tuple[bytes, bytes]:
        event = self.event()
        return str(event["user_id"]).encode(), orjson.dumps(event)

    def event(self) -> dict[str, Any]:
        """The next event as a dict."""
        rng = self._rng
        self._time_ms += rng.randint(0, 1500)
        self._index += 1
        event_type = rng.choices(_TYPE_NAMES, _TYPE_WEIGHTS)[0]
        event: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "event_type": event_type,
            "event_time": _iso(self._time_ms),
            "sequence": self._index,
            "user_id": rng.randint(1, 20_000),
            "session_id": f"s-{rng.getrandbits(48):012x}",
            "device": _device(rng),
            "tags": sorted(rng.sample(TAGS, rng.randint(0, 3))),
        }
        event.update(_EVENT_TYPES[event_type][1](rng))
        _occasional_keys(rng, event)
        return event


def _iso(time_ms: int) -> str:
    moment = datetime.fromtimestamp(time_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _device(rng: random.Random) -> dict[str, Any]:
    kind, system, version = rng.choice(DEVICES)
    return {"type": kind, "os": system, "os_version": version, "app": rng.random() < 0.4}


def _product(rng: random.Random) -> dict[str, Any]:
    return {
        "product_id": f"SKU-{rng.randint(1, 5000):06d}",
        "category": rng.choice(CATEGORIES),
        "price": round(rng.uniform(1.5, 400.0), 2),
        "currency": rng.choice(CURRENCIES),
    }


def _address(rng: random.Random) -> dict[str, Any]:
    city, country, postcode, street = rng.choice(CITIES)
    return {
        "street": f"{street} {rng.randint(1, 180)}",
        "city": city,
        "postcode": postcode,
        "country": country,
    }


def _page_view(rng: random.Random) -> dict[str, Any]:
    details: dict[str, Any] = {"page": rng.choice(PAGES).format(category=rng.choice(CATEGORIES))}
    if rng.random() < 0.3:
        details["referrer"] = rng.choice(("google", "newsletter", "instagram", "direct"))
    return details


def _search(rng: random.Random) -> dict[str, Any]:
    return {"query": rng.choice(SEARCHES), "results": rng.randint(0, 240)}


def _cart_change(rng: random.Random) -> dict[str, Any]:
    return {**_product(rng), "quantity": rng.randint(1, 4)}


def _checkout(rng: random.Random) -> dict[str, Any]:
    return {"cart_items": rng.randint(1, 6), "address": _address(rng)}


def _purchase(rng: random.Random) -> dict[str, Any]:
    currency = rng.choice(CURRENCIES)
    items: list[dict[str, Any]] = [
        {
            "product_id": f"SKU-{rng.randint(1, 5000):06d}",
            "quantity": rng.randint(1, 3),
            "price": round(rng.uniform(1.5, 400.0), 2),
        }
        for _ in range(rng.randint(1, 4))
    ]
    total = round(sum(item["quantity"] * item["price"] for item in items), 2)
    return {
        "order_id": f"O-{rng.getrandbits(40):010x}",
        "items": items,
        "price": total,
        "currency": currency,
        "payment_method": rng.choice(PAYMENT_METHODS),
        "address": _address(rng),
    }


# Event type -> (relative frequency, the fields it adds to the common ones).
_EVENT_TYPES: dict[str, tuple[int, Callable[[random.Random], dict[str, Any]]]] = {
    "page_view": (38, _page_view),
    "product_view": (24, _product),
    "search": (12, _search),
    "add_to_cart": (11, _cart_change),
    "remove_from_cart": (3, _cart_change),
    "checkout": (6, _checkout),
    "purchase": (6, _purchase),
}
_TYPE_NAMES = tuple(_EVENT_TYPES)
_TYPE_WEIGHTS = tuple(weight for weight, _ in _EVENT_TYPES.values())


def _occasional_keys(rng: random.Random, event: dict[str, Any]) -> None:
    """Keys only a few records carry: a coupon, gift wrapping, an A/B-test assignment."""
    if event["event_type"] in ("add_to_cart", "purchase") and rng.random() < 0.08:
        event["coupon_code"] = rng.choice(("WELCOME10", "SPRING25", "FREESHIP"))
    if event["event_type"] == "purchase" and rng.random() < 0.1:
        event["gift_wrap"] = True
    if rng.random() < 0.05:
        event[f"exp_{rng.randint(1, EXPERIMENTS)}"] = rng.choice(("control", "variant_a", "variant_b"))


class _StopRequest:
    """SIGINT/SIGTERM ask the producer to stop, flush and exit 0; the previous handlers come back after."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class _Pacer:
    """Spreads records evenly at `rate` per second (0: no pacing), serving deliveries while it waits."""

    def __init__(self, rate: float, clock: Clock) -> None:
        self._interval_s = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._started = clock.monotonic()

    def wait_for(self, index: int, producer: KafkaProducer, stop: _StopRequest) -> None:
        """Return when record `index` (counted from 0) is due, or a stop was requested."""
        due = self._started + index * self._interval_s
        while not stop.requested:
            left = due - self._clock.monotonic()
            if left <= 0:
                return
            producer.serve(min(left, MAX_WAIT_S))


def produce_sample(
    settings: Settings, topic: str | None, rate: float, count: int | None, seed: int, out: TextIO
) -> int:
    """Produce sample events into `topic` (default: the first of kafka.topics); return the exit code.

    `rate` is records per second (0: as fast as the client takes them); `count` None means until
    SIGINT/SIGTERM. Queued records are flushed before returning; any record the broker did not
    acknowledge makes the exit code non-zero.
    """
    target = topic or next(iter(settings.kafka.topics), None)
    problem = _usage_problem(rate, count)
    if target is None:
        problem = "no topic: the configuration subscribes by kafka.topic_pattern; name one with --topic"
    if problem is not None or target is None:
        print(f"error: {problem}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        producer = KafkaProducer(settings.kafka)
        producer.check_topic(target)
        with _StopRequest() as stop:
            sent = _produce(producer, target, _Plan(rate, count, seed), stop, out)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    except FatalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.FATAL
    return _report(producer, target, sent, settings.shutdown.timeout_s, out)


def _usage_problem(rate: float, count: int | None) -> str | None:
    if rate < 0:
        return f"--rate {rate:g}: must be 0 (as fast as possible) or a positive number of records per second"
    if count is not None and count < 0:
        return f"--count {count}: must be 0 or more"
    return None


@dataclass(frozen=True, slots=True)
class _Plan:
    """How many records to send (None: until stopped), how fast, from which seed."""

    rate: float
    count: int | None
    seed: int

    def more(self, sent: int) -> bool:
        return self.count is None or sent < self.count


def _produce(producer: KafkaProducer, topic: str, plan: _Plan, stop: _StopRequest, out: TextIO) -> int:
    clock = SystemClock()
    pacer = _Pacer(plan.rate, clock)
    events = SampleEvents(plan.seed)
    sent = 0
    next_progress = clock.monotonic() + PROGRESS_INTERVAL_S
    while plan.more(sent) and not stop.requested:
        pacer.wait_for(sent, producer, stop)
        if stop.requested:
            break
        key, value = next(events)
        producer.send(topic, key, value)
        sent += 1
        if clock.monotonic() >= next_progress:
            print(f"produced {sent} records to {topic}", file=out, flush=True)
            next_progress += PROGRESS_INTERVAL_S
    return sent


def _report(producer: KafkaProducer, topic: str, sent: int, flush_timeout_s: float, out: TextIO) -> int:
    undelivered = producer.flush(flush_timeout_s)
    deliveries = producer.deliveries
    print(
        f"produced {sent} records to {topic}: {deliveries.delivered} delivered, "
        f"{deliveries.failed + undelivered} failed",
        file=out,
        flush=True,
    )
    if undelivered:
        print(f"error: {undelivered} records were not delivered within {flush_timeout_s:g}s", file=sys.stderr)
    for error in deliveries.errors:
        print(f"error: delivery failed: {error}", file=sys.stderr)
    return ExitCode.OK if deliveries.failed == 0 and undelivered == 0 else ExitCode.FATAL
