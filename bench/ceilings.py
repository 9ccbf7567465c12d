"""The two ceilings, each run in its own process so that its peak RSS and CPU are its own.

  python -m bench.ceilings consume --bootstrap B --topic T --records N
      (a) confluent-kafka consuming the topic and touching each value, no parsing
  python -m bench.ceilings encode --workload W1 --records N --out DIR
      (b) orjson + Arrow + Parquet zstd over the same values, in memory, no Kafka, one thread

Each prints one JSON object: records, input_bytes, elapsed_s, cpu_s, peak_rss_bytes,
output_bytes, files. elapsed_s and cpu_s cover the measured work only: not the start-up, not the
generation of (b)'s values.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Consumer

from bench.workloads import WORKLOADS
from consumer.kafka.client import consume_ready
from consumer.kafka.source import CLIENT_DEFAULTS

BATCH = 10_000
ROW_GROUP_ROWS = 200_000


def _cpu_s() -> float:
    """CPU seconds of this process so far, all threads (librdkafka's and Arrow's too)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss() -> dict[str, Any]:
    return {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def consume(bootstrap: str, topic: str, records: int) -> dict[str, Any]:
    # The archiver's own client settings: its small prefetch, refilled at once (with librdkafka's
    # defaults the consumer waits a second whenever the queue was full and is 3x slower here). And
    # its way of polling: the client's batch consume would wait its whole timeout for the last batch.
    consumer = Consumer(
        {
            **CLIENT_DEFAULTS,
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-ceiling-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    seen = total_bytes = 0
    started, cpu_started = time.perf_counter(), _cpu_s()
    while seen < records:
        for message in consume_ready(consumer, BATCH, 0.5):
            if message.error() is None:
                total_bytes += len(message.value() or b"")
                seen += 1
    elapsed, cpu = time.perf_counter() - started, _cpu_s() - cpu_started
    consumer.close()
    return {
        "records": seen,
        "input_bytes": total_bytes,
        "elapsed_s": elapsed,
        "cpu_s": cpu,
        "output_bytes": 0,
        "files": 0,
    }


def encode(workload: str, records: int, out: Path) -> dict[str, Any]:
    # Copied: each bytes object orjson.dumps returns sits in a ~4 KiB allocation, which would make
    # the values alone take about 4 GiB of RSS for 1M records instead of their 0.3 GB.
    values = [bytes(memoryview(value)) for value in WORKLOADS[workload].values(records)]
    struct_type = pa.array([orjson.loads(value) for value in values[:1000]]).type
    schema = pa.schema(list(struct_type))
    path = out / f"ceiling-{workload}.parquet"
    started, cpu_started = time.perf_counter(), _cpu_s()
    writer = pq.ParquetWriter(str(path), schema, compression="zstd")
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for start in range(0, len(values), BATCH):
        rows = [orjson.loads(value) for value in values[start : start + BATCH]]
        pending.append(pa.RecordBatch.from_struct_array(pa.array(rows, type=struct_type)))
        pending_rows += len(rows)
        if pending_rows >= ROW_GROUP_ROWS:
            writer.write_table(pa.Table.from_batches(pending), row_group_size=pending_rows)
            pending, pending_rows = [], 0
    if pending:
        writer.write_table(pa.Table.from_batches(pending), row_group_size=pending_rows)
    writer.close()
    elapsed, cpu = time.perf_counter() - started, _cpu_s() - cpu_started
    return {
        "records": len(values),
        "input_bytes": sum(map(len, values)),
        "elapsed_s": elapsed,
        "cpu_s": cpu,
        "output_bytes": path.stat().st_size,
        "files": 1,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.ceilings")
    commands = parser.add_subparsers(dest="command", required=True)
    consume_parser = commands.add_parser("consume")
    consume_parser.add_argument("--bootstrap", required=True)
    consume_parser.add_argument("--topic", required=True)
    consume_parser.add_argument("--records", type=int, required=True)
    encode_parser = commands.add_parser("encode")
    encode_parser.add_argument("--workload", choices=sorted(WORKLOADS), required=True)
    encode_parser.add_argument("--records", type=int, required=True)
    encode_parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "consume":
        result = consume(args.bootstrap, args.topic, args.records)
    else:
        result = encode(args.workload, args.records, args.out)
    sys.stdout.write(orjson.dumps({**result, **_peak_rss()}).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
