"""Output paths, their parsing, and the day a file is filed under."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from consumer.naming import (
    DayRule,
    FileKind,
    SegmentFileName,
    parse_date_directory,
    parse_file_name,
    parse_in_progress_name,
    topic_directory,
)

DAY = date(2024, 1, 2)
NAME = "events+3+00000000000000000042.parquet"
WALL_NOW = datetime(2023, 11, 14, 22, 0, tzinfo=UTC).timestamp()
KAFKA_MS = int(datetime(2024, 1, 1, 12, 0, tzinfo=UTC).timestamp() * 1000)


def _ms(day: date, hour: int, minute: int, second: int) -> int:
    moment = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with a local time zone 14 hours ahead of UTC, so a local-time day would differ."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


class TestSegmentFileName:
    def test_data_path(self) -> None:
        """A data file lives at <topic>/date=YYYY-MM-DD/<topic>+<partition>+<20-digit offset>.parquet."""
        name = SegmentFileName(FileKind.DATA, "events", 3, 42, DAY)
        assert name.path == f"events/date=2024-01-02/{NAME}"

    def test_quarantine_path(self) -> None:
        """A quarantine file has the same name under _quarantine/<topic>/date=YYYY-MM-DD/."""
        name = SegmentFileName(FileKind.QUARANTINE, "events", 3, 42, DAY)
        assert name.path == f"_quarantine/events/date=2024-01-02/{NAME}"

    def test_in_progress_path_is_hidden_in_the_same_folder(self) -> None:
        """An in-progress file is '.<name>.inprogress' beside the final name."""
        name = SegmentFileName(FileKind.DATA, "events", 3, 42, DAY)
        assert name.in_progress_path == f"events/date=2024-01-02/.{NAME}.inprogress"

    def test_largest_offset_is_padded_to_twenty_digits(self) -> None:
        """The start offset is zero-padded to 20 digits, so names sort by offset."""
        name = SegmentFileName(FileKind.DATA, "events", 0, 2**63 - 1, DAY)
        assert name.file_name == "events+0+09223372036854775807.parquet"

    def test_topic_directory_per_kind(self) -> None:
        """Data files sit under the topic, quarantine files under _quarantine/<topic>."""
        assert topic_directory(FileKind.DATA, "events") == "events"
        assert topic_directory(FileKind.QUARANTINE, "events") == "_quarantine/events"


class TestParseFileName:
    def test_inverts_the_file_name(self) -> None:
        """Parsing a finished file's name gives back its topic, partition and start offset."""
        name = SegmentFileName(FileKind.DATA, "my.topic_v-2", 17, 123_456, DAY)
        assert parse_file_name(name.file_name) == ("my.topic_v-2", 17, 123_456)

    @pytest.mark.parametrize(
        "name",
        [
            "events+3+42.parquet",
            "events+3+000000000000000000042.parquet",
            f".{NAME}.inprogress",
            "events+3+00000000000000000042.parquet.tmp",
            "events-3-00000000000000000042.parquet",
            "events+x+00000000000000000042.parquet",
            "events+3+00000000000000000042.csv",
            "+3+00000000000000000042.parquet",
            "notes.txt",
        ],
    )
    def test_rejects_other_names(self, name: str) -> None:
        """Names the archiver does not write as finished files parse to None."""
        assert parse_file_name(name) is None

    def test_rejects_a_partition_with_leading_zeros(self) -> None:
        """A name whose partition has leading zeros is not one the archiver writes, so it is rejected."""
        assert parse_file_name("events+03+00000000000000000042.parquet") is None


class TestParseInProgressName:
    def test_inverts_the_in_progress_name(self) -> None:
        """Parsing an in-progress file's base name gives back its topic, partition and start offset."""
        assert parse_in_progress_name(f".{NAME}.inprogress") == ("events", 3, 42)

    @pytest.mark.parametrize(
        "name", [NAME, f"{NAME}.inprogress", f".{NAME}", ".events+3+42.parquet.inprogress", ".inprogress"]
    )
    def test_rejects_other_names(self, name: str) -> None:
        """Finished names, unhidden or malformed in-progress names parse to None."""
        assert parse_in_progress_name(name) is None


class TestParseDateDirectory:
    def test_inverts_the_date_folder(self) -> None:
        """A `date=YYYY-MM-DD` folder name gives back its day."""
        name = SegmentFileName(FileKind.DATA, "events", 0, 0, DAY)
        assert parse_date_directory(name.directory.rsplit("/", 1)[1]) == DAY

    @pytest.mark.parametrize(
        "name", ["2024-01-02", "day=2024-01-02", "date=2024-13-01", "date=", "date=soon"]
    )
    def test_rejects_other_folders(self, name: str) -> None:
        """Folders that are not a valid `date=` day parse to None."""
        assert parse_date_directory(name) is None


class TestDayRule:
    @pytest.mark.usefixtures("far_from_utc")
    def test_day_of_the_kafka_timestamp_in_utc(self) -> None:
        """Without a field, the day is the Kafka timestamp's UTC day, whatever the local zone."""
        rule = DayRule()
        assert rule.day({"a": 1}, _ms(date(2024, 1, 1), 23, 59, 59), WALL_NOW) == date(2024, 1, 1)
        assert rule.day({"a": 1}, _ms(date(2024, 1, 2), 0, 0, 0), WALL_NOW) == date(2024, 1, 2)

    @pytest.mark.parametrize("timestamp_ms", [None, -1])
    def test_wall_clock_without_a_timestamp(self, timestamp_ms: int | None) -> None:
        """A record without a Kafka timestamp (None or -1) is filed under the wall clock's UTC day."""
        assert DayRule().day({"a": 1}, timestamp_ms, WALL_NOW) == date(2023, 11, 14)

    def test_wall_clock_when_the_kafka_timestamp_is_out_of_range(self) -> None:
        """A Kafka timestamp beyond the calendar (year > 9999) is unusable: the wall clock's day is used."""
        assert DayRule().day({"a": 1}, 10**15, WALL_NOW) == date(2023, 11, 14)

    @pytest.mark.parametrize(
        ("unit", "field_value"),
        [
            ("s", 1_709_251_200),
            ("s", 1_709_251_200.5),
            ("ms", 1_709_251_200_000),
            ("us", 1_709_251_200_000_000),
            ("iso8601", "2024-03-01T00:00:00Z"),
        ],
    )
    def test_day_of_the_configured_field(self, unit: str, field_value: Any) -> None:
        """A configured field in s, ms, us or ISO 8601 decides the day (2024-03-01), not the Kafka time."""
        rule = DayRule("event_time", unit)
        assert rule.day({"event_time": field_value}, KAFKA_MS, WALL_NOW) == date(2024, 3, 1)

    @pytest.mark.usefixtures("far_from_utc")
    def test_iso8601_with_an_offset_is_taken_in_utc(self) -> None:
        """An ISO 8601 time with a zone offset is filed under its UTC day."""
        rule = DayRule("event_time", "iso8601")
        assert rule.day({"event_time": "2024-03-01T22:00:00-05:00"}, KAFKA_MS, WALL_NOW) == date(2024, 3, 2)

    def test_iso8601_without_an_offset_keeps_its_day(self) -> None:
        """A naive ISO 8601 time is read as UTC: its own calendar day."""
        rule = DayRule("event_time", "iso8601")
        assert rule.day({"event_time": "2024-03-01T23:30:00"}, KAFKA_MS, WALL_NOW) == date(2024, 3, 1)

    def test_kafka_timestamp_when_the_field_is_absent(self) -> None:
        """A row without the configured field is filed under its Kafka timestamp's day."""
        assert DayRule("event_time", "ms").day({"other": 1}, KAFKA_MS, WALL_NOW) == date(2024, 1, 1)

    def test_kafka_timestamp_without_a_row(self) -> None:
        """A rejected record (no row) is filed under its Kafka timestamp's day, even with a field set."""
        assert DayRule("event_time", "ms").day(None, KAFKA_MS, WALL_NOW) == date(2024, 1, 1)

    @pytest.mark.parametrize(
        ("unit", "field_value"),
        [
            ("ms", "1709251200000"),
            ("ms", True),
            ("ms", None),
            ("ms", {"t": 1}),
            ("s", 10**30),
            ("s", float("inf")),
            ("s", float("nan")),
            ("iso8601", "yesterday"),
            ("iso8601", 1_709_251_200),
        ],
    )
    def test_kafka_timestamp_when_the_field_is_unreadable(self, unit: str, field_value: Any) -> None:
        """A field value that is not a time in the configured unit falls back to the Kafka timestamp."""
        rule = DayRule("event_time", unit)
        assert rule.day({"event_time": field_value}, KAFKA_MS, WALL_NOW) == date(2024, 1, 1)

    def test_wall_clock_when_field_is_unreadable_and_there_is_no_timestamp(self) -> None:
        """Unreadable field and no Kafka timestamp: the wall clock's day."""
        rule = DayRule("event_time", "ms")
        assert rule.day({"event_time": "soon"}, None, WALL_NOW) == date(2023, 11, 14)
