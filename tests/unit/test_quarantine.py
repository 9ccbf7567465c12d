"""Quarantine rows: every rejected record with its origin, raw bytes and reason, in offset order."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from consumer.quarantine import QUARANTINE_SCHEMA, quarantine_batch
from consumer.records import Reason, Rejected, TopicPartition

TP = TopicPartition("events", 7)
BASE_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
COLUMNS = ["_topic", "_partition", "_offset", "_timestamp", "_key", "_headers", "value", "reason", "detail"]
TOPIC, PARTITION, OFFSET, TIMESTAMP, KEY, HEADERS, VALUE, REASON, DETAIL = COLUMNS


def _column(batch: pa.RecordBatch, name: str) -> list[object]:
    values: list[object] = batch.column(name).to_pylist()
    return values


class TestQuarantineBatch:
    def test_rows_follow_offset_order(self) -> None:
        """Rejects gathered out of order come out sorted by offset."""
        rejected = [
            Rejected(9, BASE_MS, None, b"x", Reason.INTEGER_OUT_OF_RANGE, "big"),
            Rejected(3, BASE_MS, None, b"[]", Reason.NOT_AN_OBJECT, "array"),
            Rejected(5, BASE_MS, None, b"{", Reason.INVALID_JSON, "eof"),
        ]
        batch = quarantine_batch(TP, rejected)
        assert _column(batch, OFFSET) == [3, 5, 9]
        assert _column(batch, VALUE) == [b"[]", b"{", b"x"]

    def test_columns_carry_origin_value_reason_and_detail(self) -> None:
        """Each row names its topic and partition and keeps key, headers, raw value, reason and detail."""
        headers = [("trace", b"t-1"), ("trace", None)]
        batch = quarantine_batch(
            TP, [Rejected(4, BASE_MS + 1, b"key", None, Reason.TOMBSTONE, "tomb", headers)]
        )
        assert batch.schema.equals(QUARANTINE_SCHEMA)
        assert batch.schema.names == COLUMNS
        assert [_column(batch, name) for name in COLUMNS if name != TIMESTAMP] == [
            ["events"],
            [7],
            [4],
            [b"key"],
            [[{"key": "trace", "value": b"t-1"}, {"key": "trace", "value": None}]],
            [None],
            ["tombstone"],
            ["tomb"],
        ]

    def test_headers_are_null_when_not_read(self) -> None:
        """Without `_headers` among the metadata columns the archiver has no headers to keep."""
        batch = quarantine_batch(TP, [Rejected(4, BASE_MS, None, b"{", Reason.INVALID_JSON, "eof")])
        assert _column(batch, HEADERS) == [None]

    def test_timestamps_become_utc_microseconds(self) -> None:
        """Kafka milliseconds become UTC timestamps; a missing timestamp stays null."""
        rejected = [
            Rejected(0, BASE_MS + 1, None, b"", Reason.INVALID_JSON, ""),
            Rejected(1, None, None, b"", Reason.INVALID_JSON, ""),
        ]
        batch = quarantine_batch(TP, rejected)
        assert batch.schema.field(TIMESTAMP).type == pa.timestamp("us", tz="UTC")
        assert _column(batch, TIMESTAMP) == [datetime(2024, 1, 1, 0, 0, 0, 1000, tzinfo=UTC), None]

    def test_a_timestamp_the_column_cannot_hold_is_null_and_kept_in_the_detail(self) -> None:
        """A timestamp beyond the microsecond column's range (about 292,000 years from 1970) is null
        there; the detail keeps it, once."""
        huge = 2**62
        named = f"its Kafka timestamp, {huge} ms, ..."
        rejected = [
            Rejected(0, huge, None, b"{", Reason.INVALID_JSON, "eof"),
            Rejected(1, huge, None, b"{}", Reason.TIMESTAMP_OUT_OF_RANGE, named),
            Rejected(2, BASE_MS, None, b"{", Reason.INVALID_JSON, "eof"),
        ]
        batch = quarantine_batch(TP, rejected)
        assert _column(batch, TIMESTAMP) == [None, None, datetime(2024, 1, 1, tzinfo=UTC)]
        details = _column(batch, "detail")
        assert details[0] == f"eof; its Kafka timestamp, {huge} ms, is beyond what a timestamp column holds"
        assert details[1:] == [named, "eof"]

    def test_no_rejects_give_an_empty_batch(self) -> None:
        """Without rejects the batch has the quarantine schema and no rows."""
        batch = quarantine_batch(TP, [])
        assert batch.num_rows == 0
        assert batch.schema.equals(QUARANTINE_SCHEMA)
