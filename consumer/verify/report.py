"""The verification report: a table for people, or one JSON document for programs.

The table has one line per partition, then one line per finding and per information line. The
JSON document is {"consistent", "deep", "partitions", "findings", "information"}; information
never makes the archive inconsistent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import orjson

from consumer.verify.model import Finding
from consumer.verify.scan import PartitionResult

HEADERS = ("topic", "partition", "files", "segments", "archived", "committed", "findings")


@dataclass(frozen=True, slots=True)
class Verification:
    """Everything verify found, partitions in topic and partition order."""

    partitions: list[PartitionResult]
    topic_findings: list[Finding]
    deep: bool

    @property
    def all_findings(self) -> list[Finding]:
        return [*self.topic_findings, *(finding for result in self.partitions for finding in result.findings)]

    @property
    def findings(self) -> list[Finding]:
        return [finding for finding in self.all_findings if not finding.kind.is_information]

    @property
    def information(self) -> list[Finding]:
        return [finding for finding in self.all_findings if finding.kind.is_information]

    @property
    def consistent(self) -> bool:
        return not self.findings


def write_report(verification: Verification, as_json: bool, out: TextIO) -> None:
    """Write the report in the requested form."""
    if as_json:
        out.write(orjson.dumps(document(verification), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        out.write(table(verification))


def document(verification: Verification) -> dict[str, Any]:
    """The JSON report."""
    return {
        "consistent": verification.consistent,
        "deep": verification.deep,
        "partitions": [_partition(result) for result in verification.partitions],
        "findings": [_finding(finding) for finding in verification.findings],
        "information": [_finding(finding) for finding in verification.information],
    }


def _partition(result: PartitionResult) -> dict[str, Any]:
    state, archived = result.state, result.archived
    return {
        "topic": result.tp.topic,
        "partition": result.tp.partition,
        "files": result.files,
        "segments": len(result.segments),
        "archived_first_offset": archived[0] if archived else None,
        "archived_last_offset": archived[1] if archived else None,
        "low_watermark": state.low if state else None,
        "high_watermark": state.high if state else None,
        "committed": state.committed if state else None,
        "findings": _count(result.findings),
    }


def _finding(finding: Finding) -> dict[str, Any]:
    return {
        "kind": finding.kind.value,
        "topic": finding.topic,
        "partition": finding.partition,
        "first_offset": finding.first_offset,
        "last_offset": finding.last_offset,
        "detail": finding.detail,
        "path": finding.path,
    }


def _count(findings: Sequence[Finding]) -> int:
    return sum(not finding.kind.is_information for finding in findings)


def table(verification: Verification) -> str:
    """The readable report: partitions, findings, information, verdict."""
    rows = [HEADERS, *(_row(result) for result in verification.partitions)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(HEADERS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    for title, findings in (("findings", verification.findings), ("information", verification.information)):
        if findings:
            lines += ["", f"{title}:", *(f"  {_line(finding)}" for finding in findings)]
    count = len(verification.findings)
    verdict = (
        "consistent" if verification.consistent else f"INCONSISTENT: {count} finding{'s' * (count != 1)}"
    )
    mode = "deep" if verification.deep else "footers and offsets only; --deep also reads the topic"
    return "\n".join([*lines, "", f"{verdict} ({mode})", ""])


def _row(result: PartitionResult) -> tuple[str, ...]:
    archived = result.archived
    committed = result.state.committed if result.state else None
    return (
        result.tp.topic,
        str(result.tp.partition),
        str(result.files),
        str(len(result.segments)),
        f"{archived[0]}-{archived[1]}" if archived else "-",
        "-" if committed is None else str(committed),
        str(_count(result.findings)),
    )


def _line(finding: Finding) -> str:
    where = finding.topic if finding.partition is None else f"{finding.topic}[{finding.partition}]"
    if finding.first_offset is not None:
        last = finding.last_offset
        where += f" @{finding.first_offset}" + ("" if last in (None, finding.first_offset) else f"-{last}")
    path = f" ({finding.path})" if finding.path else ""
    return f"{finding.kind.value}: {where}: {finding.detail}{path}"
