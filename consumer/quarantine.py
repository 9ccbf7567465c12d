"""The quarantine's rows: every rejected record with its origin, raw bytes and the reason.

The origin columns have the data files' names (`_partition`, `_offset`, ...), so the two join.
`_headers` holds the record's Kafka headers when the archiver reads them (`_headers` among
`output.metadata_columns`), and is null otherwise.

Quarantine files follow the data files' rules (hidden while written, finished durably, offsets
committed only after) and sit beside them under `_quarantine/<topic>/date=.../`.
"""

from __future__ import annotations

import pyarrow as pa

from consumer.convert import HEADERS_TYPE, TIMESTAMP, timestamp_array, timestamp_beyond_detail
from consumer.records import Reason, Rejected, TopicPartition

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("_topic", pa.string()),
        pa.field("_partition", pa.int32()),
        pa.field("_offset", pa.int64()),
        pa.field("_timestamp", TIMESTAMP),
        pa.field("_key", pa.binary()),
        pa.field("_headers", HEADERS_TYPE),
        pa.field("value", pa.binary()),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
    ]
)


def quarantine_batch(tp: TopicPartition, rejected: list[Rejected]) -> pa.RecordBatch:
    """One batch of quarantine rows, in offset order."""
    ordered = sorted(rejected, key=lambda entry: entry.offset)
    count = len(ordered)
    timestamps, beyond = timestamp_array([entry.timestamp_ms for entry in ordered])
    details = [entry.detail for entry in ordered]
    for index in beyond:  # the column cannot hold it: the detail keeps it
        entry = ordered[index]
        if entry.reason is not Reason.TIMESTAMP_OUT_OF_RANGE:
            details[index] = f"{entry.detail}; {timestamp_beyond_detail(entry.timestamp_ms)}"
    return pa.RecordBatch.from_arrays(
        [
            pa.array([tp.topic] * count, pa.string()),
            pa.array([tp.partition] * count, pa.int32()),
            pa.array([entry.offset for entry in ordered], pa.int64()),
            timestamps,
            pa.array([entry.key for entry in ordered], pa.binary()),
            pa.array([entry.headers for entry in ordered], HEADERS_TYPE),
            pa.array([entry.value for entry in ordered], pa.binary()),
            pa.array([entry.reason.value for entry in ordered], pa.string()),
            pa.array(details, pa.string()),
        ],
        schema=QUARANTINE_SCHEMA,
    )
