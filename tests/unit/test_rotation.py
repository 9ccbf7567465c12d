"""Rotation policies: the reason to finish a file now, or None, at each limit's boundary."""

from __future__ import annotations

from consumer.rotation import FileProgress, RotationPolicy, RotationReason

POLICY = RotationPolicy(
    file_max_bytes=1_000, file_max_age_s=60.0, file_max_idle_s=10.0, file_max_row_groups=4
)
OPENED_AT = 100.0


def _progress(
    bytes_written: int = 0,
    buffered_bytes: int = 0,
    compression_ratio: float = 1.0,
    row_groups: int = 0,
    last_record_at: float = OPENED_AT,
    caught_up: bool = True,
) -> FileProgress:
    return FileProgress(
        bytes_written, buffered_bytes, compression_ratio, row_groups, OPENED_AT, last_record_at, caught_up
    )


class TestFileProgress:
    def test_estimate_scales_only_the_buffered_bytes(self) -> None:
        """Estimated size = bytes on disk + buffered bytes x compression ratio (truncated)."""
        assert _progress(bytes_written=300, buffered_bytes=501, compression_ratio=0.5).estimated_bytes == 550


class TestRotationPolicy:
    def test_nothing_due_within_every_limit(self) -> None:
        """A young, small, active file with few row groups is kept open."""
        assert POLICY.reason(_progress(bytes_written=100, row_groups=1), OPENED_AT + 1) is None

    def test_size_when_the_estimate_reaches_the_limit(self) -> None:
        """Bytes on disk plus buffered bytes reaching file_max_bytes exactly is SIZE."""
        progress = _progress(bytes_written=600, buffered_bytes=400)
        assert POLICY.reason(progress, OPENED_AT) is RotationReason.SIZE

    def test_no_size_one_byte_below_the_limit(self) -> None:
        """An estimate one byte under file_max_bytes is not SIZE."""
        assert POLICY.reason(_progress(bytes_written=600, buffered_bytes=399), OPENED_AT) is None

    def test_size_applies_the_compression_ratio_to_buffered_bytes(self) -> None:
        """Buffered bytes count at the compression ratio: 4000 buffered at 0.25 reach 1000."""
        assert POLICY.reason(_progress(buffered_bytes=4_000, compression_ratio=0.25), OPENED_AT) is (
            RotationReason.SIZE
        )
        assert POLICY.reason(_progress(buffered_bytes=3_999, compression_ratio=0.25), OPENED_AT) is None

    def test_row_groups_at_the_limit(self) -> None:
        """A file holding file_max_row_groups row groups is ROW_GROUPS; one fewer is not."""
        assert POLICY.reason(_progress(row_groups=4), OPENED_AT) is RotationReason.ROW_GROUPS
        assert POLICY.reason(_progress(row_groups=3), OPENED_AT) is None

    def test_age_counts_from_opening_even_with_recent_records(self) -> None:
        """file_max_age_s after opening is AGE although a record just arrived; a moment earlier is not."""
        now = OPENED_AT + 60.0
        assert POLICY.reason(_progress(last_record_at=now), now) is RotationReason.AGE
        assert POLICY.reason(_progress(last_record_at=now), now - 0.001) is None

    def test_idle_counts_from_the_last_record(self) -> None:
        """file_max_idle_s after the last record is IDLE; a moment earlier is not."""
        last = OPENED_AT + 30.0
        assert POLICY.reason(_progress(last_record_at=last), last + 10.0) is RotationReason.IDLE
        assert POLICY.reason(_progress(last_record_at=last), last + 9.999) is None

    def test_a_partition_behind_its_end_is_never_idle(self) -> None:
        """Without records for far longer than file_max_idle_s, a partition not read to its end is not
        IDLE (the client has not served it yet); AGE still finishes its file."""
        last = OPENED_AT + 30.0
        behind = _progress(last_record_at=last, caught_up=False)
        assert POLICY.reason(behind, last + 29.0) is None
        assert POLICY.reason(behind, OPENED_AT + 60.0) is RotationReason.AGE

    def test_size_comes_first_when_every_limit_is_reached(self) -> None:
        """With all limits reached, the reason given is SIZE, then ROW_GROUPS, then AGE."""
        now = OPENED_AT + 100.0
        assert POLICY.reason(_progress(bytes_written=1_000, row_groups=4), now) is RotationReason.SIZE
        assert POLICY.reason(_progress(row_groups=4), now) is RotationReason.ROW_GROUPS
        assert POLICY.reason(_progress(), now) is RotationReason.AGE

    def test_the_clock_makes_a_file_due_at_its_idle_timeout_or_its_age_whichever_is_sooner(self) -> None:
        """A caught-up partition is due by the clock file_max_idle_s after its last record, unless its
        age comes first; one behind its end only by age. Size and row groups never count here."""
        assert POLICY.clock_due_at(_progress(last_record_at=OPENED_AT + 5.0)) == OPENED_AT + 15.0
        assert POLICY.clock_due_at(_progress(last_record_at=OPENED_AT + 55.0)) == OPENED_AT + 60.0
        behind = _progress(last_record_at=OPENED_AT + 5.0, caught_up=False)
        assert POLICY.clock_due_at(behind) == OPENED_AT + 60.0
        assert POLICY.clock_due_at(_progress(bytes_written=5_000, row_groups=9)) == OPENED_AT + 10.0
