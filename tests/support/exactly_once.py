"""The records the failure tests produce, and the check that each ends up archived exactly once."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from tests.support.archive import data_columns, read_quarantine, read_rows, rebuild, without_nulls
from tests.support.daemon import DaemonProcess
from tests.support.kafka_tools import RecordWriter

BAD_VALUES = [b"{broken", b"[1]", b'"text"', b"\xff\xfe\xfd"]


def record(index: int, pad_bytes: int = 0) -> bytes:
    """Record i: a small object, every 101st a bad value; pad_bytes adds that much random hex text."""
    if index % 101 == 7:
        return BAD_VALUES[index % len(BAD_VALUES)]
    value: dict[str, Any] = {
        "i": index,
        "user": f"u{index % 97}",
        "amount": index * 0.25,
        "tags": ["x"] * (index % 3),
    }
    if pad_bytes:
        value["pad"] = random.Random(index).randbytes(pad_bytes // 2).hex()
    return orjson.dumps(value)


def expected(
    count: int, partitions: int, pad_bytes: int = 0
) -> tuple[dict[tuple[int, int], dict[str, Any]], set[tuple[int, int]]]:
    """What each (partition, offset) holds when record i goes to partition i % partitions."""
    good: dict[tuple[int, int], dict[str, Any]] = {}
    bad: set[tuple[int, int]] = set()
    for index in range(count):
        key = (index % partitions, index // partitions)
        value = record(index, pad_bytes)
        if value in BAD_VALUES:
            bad.add(key)
        else:
            good[key] = without_nulls(orjson.loads(value))
    return good, bad


class SteadyProducer:
    """Produces records i = 0..count-1 to partition i % partitions, spread over about duration_s."""

    def __init__(
        self, bootstrap: str, topic: str, partitions: int, count: int, duration_s: float, pad_bytes: int = 0
    ) -> None:
        chunk = 500
        pause = duration_s / (count / chunk)

        writer = RecordWriter(bootstrap)

        def run() -> None:
            for start in range(0, count, chunk):
                writer.send(
                    topic,
                    [
                        (i % partitions, None, record(i, pad_bytes))
                        for i in range(start, min(count, start + chunk))
                    ],
                )
                time.sleep(pause)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self) -> None:
        self._thread.join(timeout=600)


def kill_storm(
    config: Path, producer: SteadyProducer, least_kills: int, seed: int, longest_pause_s: float
) -> None:
    """Start the daemon and SIGKILL it again and again, until the producer is done and at least
    least_kills kills are reached.

    Every third kill comes right after a file is published and before its offset is committed,
    when one is; the others after a random pause of up to longest_pause_s.
    """
    rng = random.Random(seed)
    kills = 0
    while kills < least_kills or producer.running():
        daemon = DaemonProcess(config)
        daemon.wait_for_event("partitions_assigned", timeout_s=60)
        if kills % 3 == 2:
            daemon.event_within("file_committed", timeout_s=8)
        else:
            time.sleep(rng.uniform(0.2, longest_pause_s))
        daemon.process.send_signal(signal.SIGKILL)
        daemon.wait()
        kills += 1
    producer.join()


def assert_archived_exactly_once(
    root: Path, topic: str, count: int, partitions: int, pad_bytes: int = 0
) -> None:
    """Every record of the topic is in the archive once, as a row with its content or quarantined."""
    good, bad = expected(count, partitions, pad_bytes)
    rows = read_rows(root, topic)
    places = Counter((row["_partition"], row["_offset"]) for row in rows)
    assert places, "nothing was archived"
    assert places.most_common(1)[0][1] == 1, "a record was archived twice"
    columns = data_columns(rows)
    assert {(row["_partition"], row["_offset"]): rebuild(row, columns) for row in rows} == good
    quarantined = Counter((row["_partition"], row["_offset"]) for row in read_quarantine(root, topic))
    assert set(quarantined) == bad
    assert max(quarantined.values()) == 1, "a record was quarantined twice"
