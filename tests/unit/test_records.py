"""The Decoder: raw values into rows, or rejects with a reason, never an exception."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.records import (
    DecodedBatch,
    Decoder,
    Headers,
    RawBatch,
    Reason,
    TopicPartition,
    UnreadableHeaders,
)

TP = TopicPartition("events", 2)
BASE_MS = 1_704_067_200_000
LIMIT = 64


def _raw(values: Sequence[bytes | None], first_offset: int = 40) -> RawBatch:
    """A poll of consecutive offsets whose keys and timestamps are derived from the offset."""
    offsets = list(range(first_offset, first_offset + len(values)))
    return RawBatch(
        TP,
        offsets,
        [BASE_MS + offset for offset in offsets],
        [f"k{offset}".encode() for offset in offsets],
        list(values),
    )


def _decode(values: Sequence[bytes | None], quarantine_tombstones: bool = True) -> DecodedBatch:
    return Decoder(LIMIT, quarantine_tombstones).decode(_raw(values))


def _reasons(decoded: DecodedBatch) -> list[tuple[int, Reason]]:
    return [(entry.offset, entry.reason) for entry in decoded.rejected]


def _summary(decoded: DecodedBatch) -> dict[str, Any]:
    """Everything a DecodedBatch says, as plain comparable values."""
    return {
        "rows": decoded.rows,
        "offsets": list(decoded.offsets),
        "timestamps": list(decoded.timestamps_ms),
        "keys": list(decoded.keys),
        "values": list(decoded.values),
        "rejected": [
            (entry.offset, entry.timestamp_ms, entry.key, entry.value, entry.reason, entry.detail)
            for entry in decoded.rejected
        ],
        "skipped": decoded.skipped,
        "span": (decoded.first_offset, decoded.last_offset),
    }


def _merged(parts: list[DecodedBatch]) -> dict[str, Any]:
    """The summaries of single-record polls joined as if they were one poll."""
    summaries = [_summary(part) for part in parts]
    merged: dict[str, Any] = {
        key: [item for summary in summaries for item in summary[key]]
        for key in ("rows", "offsets", "timestamps", "keys", "values", "rejected")
    }
    merged["skipped"] = sum(summary["skipped"] for summary in summaries)
    merged["span"] = (summaries[0]["span"][0], summaries[-1]["span"][1])
    return merged


OBJECT_VALUES = st.dictionaries(
    st.text(max_size=5),
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=8)),
).map(orjson.dumps)
RAW_VALUES = st.one_of(
    OBJECT_VALUES,
    OBJECT_VALUES,
    st.none(),
    st.binary(max_size=12),
    st.sampled_from([b"[1]", b'"s"', b"3", b"null", b"{", b'{"a": "\xff"}', b'{"a": 1, "a": 2}']),
)


class TestDecoder:
    def test_objects_become_rows_with_their_metadata(self) -> None:
        """JSON objects become dicts; offsets, timestamps, keys and raw values stay aligned."""
        values = [b'{"a": 1}', b'{"b": [true, null], "c": "\xc3\xa9"}']
        decoded = _decode(values)
        assert decoded.rows == [{"a": 1}, {"b": [True, None], "c": "é"}]
        assert decoded.offsets == [40, 41]
        assert decoded.timestamps_ms == [BASE_MS + 40, BASE_MS + 41]
        assert decoded.keys == [b"k40", b"k41"]
        assert decoded.values == values
        assert (decoded.rejected, decoded.skipped, decoded.tp) == ([], 0, TP)

    @pytest.mark.parametrize(
        "value", [b"{", b"", b" ", b"nope", b'{"a":}', b"{'a': 1}", b'{"a": 1} x', b"NaN"]
    )
    def test_invalid_json_is_rejected(self, value: bytes) -> None:
        """Text that is not JSON is rejected as invalid_json."""
        decoded = _decode([b"{}", value])
        assert _reasons(decoded) == [(41, Reason.INVALID_JSON)]
        assert decoded.rows == [{}]

    @pytest.mark.parametrize(
        "value", [b"1" + b"0" * 400, b'{"n": 1' + b"0" * 400 + b"}", b'{"n": [-1' + b"0" * 400 + b"]}"]
    )
    def test_integers_too_large_even_for_a_double_are_out_of_range(self, value: bytes) -> None:
        """orjson refuses integers past the double range; they are rejected as integer_out_of_range."""
        (rejected,) = Decoder(4096, quarantine_tombstones=True).decode(_raw([value])).rejected
        assert (rejected.reason, rejected.detail) == (
            Reason.INTEGER_OUT_OF_RANGE,
            "an integer beyond 64 bits cannot be kept exactly",
        )

    @pytest.mark.parametrize("value", [b'{"a": "\xff"}', b"\xff", b'{"\xc3": 1}', b'{"a": "\xed\xa0\x80"}'])
    def test_invalid_utf8_is_rejected(self, value: bytes) -> None:
        """Bytes that are not UTF-8 are rejected as invalid_utf8."""
        assert _reasons(_decode([value])) == [(40, Reason.INVALID_UTF8)]

    @pytest.mark.parametrize("value", [b"[1, 2]", b"[]", b'"text"', b"1", b"-1.5", b"null", b"true"])
    def test_json_that_is_not_an_object_is_rejected(self, value: bytes) -> None:
        """Arrays, strings, numbers, booleans and the null literal are rejected as not_an_object."""
        decoded = _decode([value, b'{"a": 1}'])
        assert _reasons(decoded) == [(40, Reason.NOT_AN_OBJECT)]
        assert decoded.rows == [{"a": 1}]
        assert "not an object" in decoded.rejected[0].detail

    def test_values_over_the_limit_are_rejected(self) -> None:
        """A value longer than max_value_bytes is rejected as oversize; one exactly at the limit is kept."""
        at_limit = b'{"a": "' + b"x" * (LIMIT - 9) + b'"}'
        over = b'{"a": "' + b"x" * (LIMIT - 8) + b'"}'
        assert (len(at_limit), len(over)) == (LIMIT, LIMIT + 1)
        decoded = _decode([at_limit, over])
        assert _reasons(decoded) == [(41, Reason.OVERSIZE)]
        assert decoded.offsets == [40]

    def test_size_is_checked_before_parsing(self) -> None:
        """An oversize value is rejected as oversize even when it is not JSON either."""
        assert _reasons(_decode([b"{" * (LIMIT + 1)])) == [(40, Reason.OVERSIZE)]

    def test_tombstones_are_quarantined_when_asked(self) -> None:
        """A null value is rejected as a tombstone when quarantine_tombstones is set."""
        decoded = _decode([b"{}", None], quarantine_tombstones=True)
        assert _reasons(decoded) == [(41, Reason.TOMBSTONE)]
        assert decoded.rejected[0].value is None
        assert decoded.skipped == 0

    def test_tombstones_are_skipped_otherwise(self) -> None:
        """Without quarantine_tombstones a null value is only counted as skipped."""
        decoded = _decode([None, b"{}", None], quarantine_tombstones=False)
        assert decoded.rejected == []
        assert decoded.skipped == 2
        assert decoded.offsets == [41]

    def test_offset_span_covers_rejected_and_skipped_records(self) -> None:
        """first_offset and last_offset span the whole poll, whatever became of its ends."""
        skipped_first = _decode([None, b"{}", b"[]"], quarantine_tombstones=False)
        assert (skipped_first.first_offset, skipped_first.last_offset) == (40, 42)
        nothing_kept = _decode([b"bad", None], quarantine_tombstones=False)
        assert (nothing_kept.first_offset, nothing_kept.last_offset) == (40, 41)
        assert nothing_kept.rows == []

    def test_duplicate_keys_keep_the_last_value(self) -> None:
        """A key repeated in one object reads as its last value."""
        assert _decode([b'{"a": 1, "b": 0, "a": 2}']).rows == [{"a": 2, "b": 0}]

    def test_rejects_carry_the_record(self) -> None:
        """A rejected entry keeps the record's offset, timestamp, key and raw bytes, with a detail."""
        decoded = _decode([b"{}", b"[1]"])
        entry = decoded.rejected[0]
        assert (entry.offset, entry.timestamp_ms, entry.key, entry.value) == (
            41,
            BASE_MS + 41,
            b"k41",
            b"[1]",
        )
        assert entry.detail

    def test_kept_rows_stay_aligned_with_their_records(self) -> None:
        """After rejects in the middle, each row still sits beside its own offset, key and bytes."""
        values = [b'{"n": 0}', b"x", None, b'{"n": 3}', b"[]", b'{"n": 5}']
        decoded = _decode(values, quarantine_tombstones=False)
        assert decoded.rows == [{"n": 0}, {"n": 3}, {"n": 5}]
        assert decoded.offsets == [40, 43, 45]
        assert decoded.keys == [b"k40", b"k43", b"k45"]
        assert decoded.timestamps_ms == [BASE_MS + 40, BASE_MS + 43, BASE_MS + 45]
        assert decoded.values == [values[0], values[3], values[5]]
        assert _reasons(decoded) == [(41, Reason.INVALID_JSON), (44, Reason.NOT_AN_OBJECT)]
        assert decoded.skipped == 1

    @settings(
        max_examples=200,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(values=st.lists(RAW_VALUES, min_size=1, max_size=8), quarantine_tombstones=st.booleans())
    def test_whole_poll_equals_one_record_at_a_time(
        self, values: list[bytes | None], quarantine_tombstones: bool
    ) -> None:
        """Decoding a poll at once gives what decoding each record alone gives, joined in order."""
        decoder = Decoder(LIMIT, quarantine_tombstones)
        whole = decoder.decode(_raw(values))
        parts = [decoder.decode(_raw([value], first_offset=40 + index)) for index, value in enumerate(values)]
        assert _summary(whole) == _merged(parts)


HEADERS: list[Headers | UnreadableHeaders | None] = [
    [("trace", b"a")],
    None,
    [("trace", b"c"), ("trace", None)],
    UnreadableHeaders("a header key is not UTF-8: 0xff"),
    [("trace", b"e")],
]


def _headed(values: Sequence[bytes | None]) -> RawBatch:
    """A poll whose records carry HEADERS, as read by a source that reads headers."""
    raw = _raw(values)
    raw.headers = list(HEADERS[: len(values)])
    return raw


class TestHeaders:
    """Headers, when the source reads them, travel with their records into rows and rejects."""

    def test_rows_keep_their_headers(self) -> None:
        """Every record a row: the headers come through as they are, None for a record without."""
        decoded = Decoder(LIMIT, True).decode(_headed([b"{}", b"{}", b"{}"]))
        assert decoded.headers == HEADERS[:3]

    def test_unreadable_headers_reject_their_record_alone(self) -> None:
        """A record whose headers the client could not read is rejected as invalid_headers with the
        client's explanation; rejected records keep their headers, the others stay rows."""
        decoded = Decoder(LIMIT, True).decode(_headed([b"{}", b"[]", b"{}", b'{"a": 1}', b"{}"]))
        assert _reasons(decoded) == [(41, Reason.NOT_AN_OBJECT), (43, Reason.INVALID_HEADERS)]
        assert [entry.headers for entry in decoded.rejected] == [None, None]
        assert decoded.rejected[1].detail == "a header key is not UTF-8: 0xff"
        assert decoded.offsets == [40, 42, 44]
        assert decoded.headers == [HEADERS[0], HEADERS[2], HEADERS[4]]

    def test_a_rejected_record_keeps_its_headers(self) -> None:
        decoded = Decoder(LIMIT, True).decode(_headed([b"{", b"{}", b"[1]"]))
        assert [(entry.offset, entry.headers) for entry in decoded.rejected] == [
            (40, HEADERS[0]),
            (42, HEADERS[2]),
        ]

    def test_without_headers_read_there_are_none(self) -> None:
        decoded = _decode([b"{}", b"{"])
        assert decoded.headers is None
        assert decoded.rejected[0].headers is None

    def test_the_unseen_part_of_a_poll_keeps_its_headers(self) -> None:
        """Slicing a poll (records already taken are dropped) slices every column alike."""
        raw = _headed([b"{}", b"{}", b"{}", b"{}", b"{}"]).starting_at(3)
        assert (raw.offsets, raw.values, raw.headers) == ([43, 44], [b"{}", b"{}"], HEADERS[3:])
