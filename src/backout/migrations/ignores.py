"""``-- backout:ignore <rule>`` comments: a lint warning switched off on purpose, where it is.

Pure: the lines of a file in, the directives out. ``-- backout:ignore rule[, rule]`` applies to
the next statement in the same file; ``-- backout:ignore-file rule[, rule]`` to every statement
in the file. Lint decides which rules may be switched off this way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

_DIRECTIVE = re.compile(r"^\s*--\s*backout:ignore(?P<file>-file)?\s+(?P<rules>[\w\-, ]+?)\s*$")
MARKER = "backout:ignore"


@dataclass(frozen=True)
class Ignore:
    """One directive: the rules it names, the file and line it is on."""

    file: Path
    line: int
    rules: frozenset[str]
    whole_file: bool = False


def ignores_in(path: Path, text: str) -> tuple[Ignore, ...]:
    """Every directive in ``text`` (the file at ``path``)."""
    if MARKER not in text:  # most files have none: no line-by-line scan for them
        return ()
    found = []
    for number, line in enumerate(text.split("\n"), start=1):
        match = _DIRECTIVE.match(line)
        if match:
            rules = frozenset(r.strip() for r in re.split(r"[,\s]+", match["rules"]) if r.strip())
            found.append(Ignore(path, number, rules, whole_file=bool(match["file"])))
    return tuple(found)


def ignored_lines(
    ignores: Iterable[Ignore], file: Path, statement_lines: Sequence[int], rule: str
) -> frozenset[int] | None:
    """The lines of the statements in ``file`` on which ``rule`` is ignored, out of
    ``statement_lines`` (each statement's first line); ``None`` means all of them."""
    lines = sorted(statement_lines)
    chosen: set[int] = set()
    for ignore in ignores:
        if ignore.file != file or rule not in ignore.rules:
            continue
        if ignore.whole_file:
            return None
        following = [line for line in lines if line > ignore.line]
        if following:
            chosen.add(following[0])
    return frozenset(chosen)
