"""What a dead letter carries when the record is too large for the dead-letter topic."""

from __future__ import annotations

from consumer.kafka.dead_letters import KEY_OMITTED, VALUE_OMITTED, fit_copy

HEADERS: list[tuple[str, str | bytes | None]] = [("archiver.reason", b"invalid_json")]  # 27 bytes


def test_a_copy_that_fits_keeps_key_and_value() -> None:
    headers = list(HEADERS)
    assert fit_copy(b"k" * 10, b"v" * 63, headers, 100) == (b"k" * 10, b"v" * 63)
    assert headers == HEADERS


def test_the_larger_part_is_left_out_first_and_its_size_given() -> None:
    headers = list(HEADERS)
    assert fit_copy(b"k" * 10, b"v" * 500, headers, 100) == (b"k" * 10, None)
    assert headers[1:] == [(VALUE_OMITTED, b"500")]
    headers = list(HEADERS)
    assert fit_copy(b"k" * 500, b"v" * 10, headers, 100) == (None, b"v" * 10)
    assert headers[1:] == [(KEY_OMITTED, b"500")]


def test_both_parts_go_when_neither_alone_is_enough() -> None:
    headers = list(HEADERS)
    assert fit_copy(b"k" * 90, b"v" * 95, headers, 100) == (None, None)
    assert headers[1:] == [(VALUE_OMITTED, b"95"), (KEY_OMITTED, b"90")]


def test_headers_alone_too_large_end_the_search() -> None:
    """Nothing left to leave out: the copy goes as it is, and the broker's refusal is reported."""
    headers = list(HEADERS)
    assert fit_copy(None, b"v", headers, 10) == (None, None)
    assert headers[1:] == [(VALUE_OMITTED, b"1")]
