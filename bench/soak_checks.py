"""The soak's pass criteria: RSS flat after warm-up, peak RSS under the budget, bounded columns, no loss.

Progress is measured in records consumed (the daemon's `records_in`): records count as archived
only when their file is finished, so the archived count moves in steps of a file, while consumed
records measure the work done so far. RSS "at 25%" and "at the end" are medians over windows of
the samples (20-30% and 90-100% of the records), so that one sample taken while a row group is
being written does not decide the comparison.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

MIB = 2**20
METADATA_COLUMNS = frozenset({"_partition", "_offset", "_timestamp", "_key"})
EXTRA_COLUMN = "_extra"
QUARTER = (0.20, 0.30)
END = (0.90, 1.00)
FLAT_TOLERANCE = 0.05
PER_RECORDS = 100_000
GO_WRITER_GROWTH_MIB = (80, 120)  # the founding analysis' leaking Go writer, per 100,000 records
OFFSET_BITS = 40


@dataclass(frozen=True, slots=True)
class Sample:
    """One second of the run: the process measured from outside plus the daemon's latest `stats`."""

    seconds: float
    records_in: int
    records_archived: int
    rss_bytes: int
    arrow_bytes: int
    arrow_peak_bytes: int
    buffered_bytes: int
    daemon_rss_bytes: int


@dataclass(frozen=True, slots=True)
class Check:
    """One pass criterion, with the numbers behind the verdict."""

    name: str
    met: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Archive:
    """What the archive holds: data and quarantine files, rows, distinct offsets, typed columns."""

    data_files: list[Path]
    quarantine_files: list[Path]
    rows: int
    quarantined: int
    distinct_offsets: int
    offsets_in_range: bool
    typed_columns: dict[Path, list[str]]


# --- memory --------------------------------------------------------------------------------------


def window_rss(samples: list[Sample], records: int, window: tuple[float, float]) -> tuple[float, float]:
    """Median RSS and median records consumed over the samples in a window of the run's records.

    A window without samples (a very short run) falls back to the sample nearest to its middle.
    """
    low, high = window[0] * records, window[1] * records
    inside = [sample for sample in samples if low <= sample.records_in <= high]
    if not inside:
        middle = (low + high) / 2
        inside = [min(samples, key=lambda sample: abs(sample.records_in - middle))]
    return (
        statistics.median(sample.rss_bytes for sample in inside),
        statistics.median(sample.records_in for sample in inside),
    )


def growth_mib_per_100k(samples: list[Sample], records: int) -> float:
    """RSS growth from 25% of the records to the end: least-squares slope, MiB per 100,000 records."""
    after = [sample for sample in samples if sample.records_in >= 0.25 * records]
    if len({sample.records_in for sample in after}) < 2:
        return 0.0
    fit = statistics.linear_regression(
        [float(sample.records_in) for sample in after], [float(sample.rss_bytes) for sample in after]
    )
    return fit.slope * PER_RECORDS / MIB


def rss_flat(samples: list[Sample], records: int) -> Check:
    quarter, quarter_at = window_rss(samples, records, QUARTER)
    end, end_at = window_rss(samples, records, END)
    change = (end - quarter) / quarter
    detail = (
        f"RSS {quarter / MIB:,.1f} MiB at 25% ({quarter_at:,.0f} records), {end / MIB:,.1f} MiB at the end "
        f"({end_at:,.0f} records): {change:+.1%} (limit ±{FLAT_TOLERANCE:.0%})"
    )
    return Check("RSS at the end within 5% of RSS at 25% of the run", abs(change) <= FLAT_TOLERANCE, detail)


def rss_peak(samples: list[Sample], high_water_bytes: int, budget_bytes: int, headroom_bytes: int) -> Check:
    sampled = max(sample.rss_bytes for sample in samples)
    peak = max(sampled, high_water_bytes)
    limit = budget_bytes + headroom_bytes
    detail = (
        f"peak RSS {peak / MIB:,.1f} MiB (kernel high-water mark {high_water_bytes / MIB:,.1f} MiB, "
        f"largest sample {sampled / MIB:,.1f} MiB), limit {budget_bytes / MIB:,.0f} MiB budget + "
        f"{headroom_bytes / MIB:,.0f} MiB = {limit / MIB:,.0f} MiB"
    )
    return Check("peak RSS at most memory.max_buffered_bytes + 200 MiB", peak <= limit, detail)


def growth_line(samples: list[Sample], records: int) -> str:
    growth = growth_mib_per_100k(samples, records)
    low, high = GO_WRITER_GROWTH_MIB
    return (
        f"RSS growth from 25% to the end: {growth:+.2f} MiB per 100,000 records "
        f"(the founding analysis' leaking Go writer: {low}-{high} MiB per 100,000 records)"
    )


# --- the archive ---------------------------------------------------------------------------------


def read_archive(root: Path, topic: str, ends: Mapping[int, int]) -> Archive:
    """Read every finished file's offsets and every data file's typed columns (pyarrow, no daemon code)."""
    data = sorted((root / topic).glob("**/*.parquet"))
    quarantine = sorted((root / "_quarantine" / topic).glob("**/*.parquet"))
    data_keys = [_offset_keys(path) for path in data]
    quarantine_keys = [_offset_keys(path) for path in quarantine]
    keys = pa.chunked_array([*data_keys, *quarantine_keys], type=pa.int64())
    return Archive(
        data_files=data,
        quarantine_files=quarantine,
        rows=sum(len(chunk) for chunk in data_keys),
        quarantined=sum(len(chunk) for chunk in quarantine_keys),
        distinct_offsets=pc.count_distinct(keys).as_py() if len(keys) else 0,
        offsets_in_range=_in_range(keys, ends),
        typed_columns={path: typed_columns(pq.read_schema(path)) for path in data},
    )


def typed_columns(schema: pa.Schema) -> list[str]:
    """A file's typed columns: everything but the metadata columns and `_extra`."""
    return [name for name in schema.names if name not in METADATA_COLUMNS and name != EXTRA_COLUMN]


def _offset_keys(path: Path) -> pa.Array:
    """(partition, offset) of every row of a file, packed into one int64."""
    table = pq.read_table(path, columns=["_partition", "_offset"])
    partition = pc.cast(table.column("_partition"), pa.int64())
    key = pc.add(pc.shift_left(partition, OFFSET_BITS), table.column("_offset"))
    return key.combine_chunks() if len(key) else pa.array([], pa.int64())


def _in_range(keys: pa.ChunkedArray, ends: Mapping[int, int]) -> bool:
    """Whether every packed (partition, offset) is an offset the topic has: 0 <= offset < end."""
    if not len(keys):
        return True
    partitions = pc.shift_right(keys, OFFSET_BITS)
    offsets = pc.bit_wise_and(keys, (1 << OFFSET_BITS) - 1)
    bounds = pa.array([ends.get(partition, 0) for partition in range(max(ends, default=0) + 1)], pa.int64())
    if pc.max(partitions).as_py() >= len(bounds):
        return False
    end_of_row = pc.take(bounds, partitions)
    return bool(pc.all(pc.less(offsets, end_of_row)).as_py())


def every_record(archive: Archive, produced: int) -> Check:
    stored = archive.rows + archive.quarantined
    met = stored == produced and archive.distinct_offsets == produced and archive.offsets_in_range
    detail = (
        f"{archive.rows:,} rows + {archive.quarantined:,} quarantined = {stored:,}, "
        f"{archive.distinct_offsets:,} distinct (partition, offset), produced {produced:,}, "
        f"offsets {'all' if archive.offsets_in_range else 'not all'} within the topic's, "
        f"{len(archive.data_files)} data files, {len(archive.quarantine_files)} quarantine files"
    )
    return Check("every record in the output once (rows + quarantined == produced)", met, detail)


def column_cap(archive: Archive, max_columns: int) -> Check:
    counts = [len(names) for names in archive.typed_columns.values()]
    most = max(counts, default=0)
    union = sorted(set().union(*archive.typed_columns.values())) if counts else []
    detail = (
        f"at most {most} typed columns in a file (limit {max_columns}), "
        f"{len(union)} across all files: {', '.join(union)}"
    )
    return Check("typed columns of every file at or under schema.max_columns", most <= max_columns, detail)


def clean_exit(code: int | None) -> Check:
    return Check("the daemon stopped cleanly on SIGTERM (exit code 0)", code == 0, f"exit code {code}")


def verdict(checks: Iterable[Check]) -> bool:
    return all(check.met for check in checks)
