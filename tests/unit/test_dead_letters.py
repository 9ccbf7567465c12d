"""What a dead letter carries, and what is left out when the record is too large for its topic."""

from __future__ import annotations

from consumer.dead_letters import origin_headers
from consumer.kafka.dead_letters import HEADERS_OMITTED, KEY_OMITTED, VALUE_OMITTED, Copy, fit_copy
from consumer.records import Headers, Reason, Rejected, TopicPartition

ORIGIN: list[tuple[str, bytes | None]] = [("archiver.reason", b"invalid_json")]  # 27 bytes


def _rejected(key: bytes | None, value: bytes | None, headers: Headers | None = None) -> Rejected:
    return Rejected(7, None, key, value, Reason.INVALID_JSON, "broken", headers)


def test_a_copy_that_fits_keeps_key_value_and_headers_before_the_origin() -> None:
    own: Headers = [("trace", b"t" * 10), ("trace", None)]  # 20 bytes, a repeated key, a null value
    copy = fit_copy(_rejected(b"k" * 10, b"v" * 43, own), ORIGIN, 100)
    assert copy == Copy(b"k" * 10, b"v" * 43, [*own, *ORIGIN])


def test_an_empty_key_stays_empty_not_null() -> None:
    assert fit_copy(_rejected(b"", b"{"), ORIGIN, 100) == Copy(b"", b"{", ORIGIN)


def test_the_larger_part_is_left_out_first_and_its_size_given() -> None:
    assert fit_copy(_rejected(b"k" * 10, b"v" * 500), ORIGIN, 100) == Copy(
        b"k" * 10, None, [*ORIGIN, (VALUE_OMITTED, b"500")]
    )
    assert fit_copy(_rejected(b"k" * 500, b"v" * 10), ORIGIN, 100) == Copy(
        None, b"v" * 10, [*ORIGIN, (KEY_OMITTED, b"500")]
    )


def test_large_headers_of_the_record_are_left_out_like_a_large_value() -> None:
    own: Headers = [("blob", b"b" * 300)]
    assert fit_copy(_rejected(b"k", b"v" * 20, own), ORIGIN, 100) == Copy(
        b"k", b"v" * 20, [*ORIGIN, (HEADERS_OMITTED, b"304")]
    )


def test_every_part_goes_when_no_smaller_set_is_enough() -> None:
    copy = fit_copy(_rejected(b"k" * 90, b"v" * 95, [("h", b"x" * 80)]), ORIGIN, 100)
    assert copy == Copy(
        None, None, [*ORIGIN, (VALUE_OMITTED, b"95"), (KEY_OMITTED, b"90"), (HEADERS_OMITTED, b"81")]
    )


def test_origin_headers_alone_too_large_end_the_search() -> None:
    """Nothing left to leave out: the copy goes as it is, and the broker's refusal is reported."""
    assert fit_copy(_rejected(None, b"v"), ORIGIN, 10) == Copy(None, None, [*ORIGIN, (VALUE_OMITTED, b"1")])


def test_origin_headers_name_the_records_place_timestamp_and_reason() -> None:
    """The record's own timestamp travels as a header (the copy is dated when sent); a record
    without one has no such header."""
    dated = Rejected(7, 1_704_067_200_000, None, b"{", Reason.INVALID_JSON, "broken")
    assert origin_headers(TopicPartition("events", 2), dated) == [
        ("archiver.topic", b"events"),
        ("archiver.partition", b"2"),
        ("archiver.offset", b"7"),
        ("archiver.timestamp_ms", b"1704067200000"),
        ("archiver.reason", b"invalid_json"),
        ("archiver.detail", b"broken"),
    ]
    undated = origin_headers(TopicPartition("events", 2), _rejected(None, b"{"))
    assert "archiver.timestamp_ms" not in dict(undated)
