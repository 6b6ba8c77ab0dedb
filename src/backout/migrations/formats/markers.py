"""The marker comments each migration tool writes, and the check that a file carries none of
another format's: a folder read in one format must never run another tool's down section as
part of a migration (``-- +goose Down`` read as a plain comment would be)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from backout.migrations.statements import LineKind, Problem

MARKERS: dict[str, re.Pattern[str]] = {
    "goose": re.compile(
        r"^\s*--\s*\+goose\s+(Up|Down|StatementBegin|StatementEnd|NO TRANSACTION)\b", re.I
    ),
    "sql-migrate": re.compile(
        r"^\s*--\s*\+migrate\s+(Up|Down|StatementBegin|StatementEnd)\b", re.I
    ),
    "dbmate": re.compile(r"^\s*--\s*migrate:(up|down)\b", re.I),
    "node-pg-migrate": re.compile(r"^\s*--\s*(Up|Down)\s+Migration\s*$", re.I),
    "liquibase": re.compile(r"^\s*--\s*(liquibase\s+formatted\s+sql|changeset\s+\S+:\S+)", re.I),
}
"""A line that marks a section in another tool's format (matched on comment lines only)."""

FORMAT_MISMATCH = "format-mismatch"


def foreign_marker_problems(
    lines: Sequence[str], kinds: Sequence[LineKind], own: str
) -> tuple[Problem, ...]:
    """One problem per comment line that is another format's marker than ``own``."""
    problems = []
    for number, (line, kind) in enumerate(zip(lines, kinds, strict=False), 1):
        if kind is not LineKind.COMMENT:
            continue
        for tool, pattern in MARKERS.items():
            if tool != own and pattern.match(line):
                problems.append(_mismatch(number, line.strip(), tool, own))
                break
    return tuple(problems)


def markers_of(lines: Sequence[str], kinds: Sequence[LineKind]) -> set[str]:
    """The formats whose markers appear on the comment lines of a file."""
    found: set[str] = set()
    for line, kind in zip(lines, kinds, strict=False):
        if kind is LineKind.COMMENT:
            found.update(tool for tool, pattern in MARKERS.items() if pattern.match(line))
    return found


def _mismatch(line: int, marker: str, tool: str, own: str) -> Problem:
    return Problem(
        FORMAT_MISMATCH,
        line,
        f"`{marker}` is a {tool} marker, but this folder is read as {own}: its down section "
        f'would run as part of the migration; set format = "{tool}" for this folder in '
        "[tool.backout] (or `formats`), or remove the marker",
    )
