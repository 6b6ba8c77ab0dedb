"""dbmate (amacneil/dbmate) migrations: ``<version>_<name>.sql`` with ``-- migrate:up`` and
``-- migrate:down`` sections.

Read as dbmate reads them: a marker starts its line (no indent), ``--``, optional spaces, then
``migrate:up`` or ``migrate:down`` in lower case; options follow on the line as ``key:value``
pairs, and ``transaction:false`` runs that section outside a transaction. The up section comes
first; only comments may precede it. A line dbmate would not read as a marker
(``-- migrate: down``, ``-- Migrate:Down``, an indented one) is refused: dbmate would run the
down SQL after it as part of the up section. Files whose name does not start with digits are
not migrations (dbmate skips them).
"""

from __future__ import annotations

import re

from backout.migrations.entry import Entry
from backout.migrations.formats.sections import Grammar, MarkedFormat, Marker, Role, misread
from backout.migrations.statements import Problem

_MARKER = re.compile(r"^--\s*migrate:(?P<role>up|down)(?:\s*$|\s+(?P<options>\S.*)$)")
_LOOSE = re.compile(r"^\s*--+\s*migrate\s*:\s*(?:up|down)\b", re.IGNORECASE)
_ROLES = {"up": Role.UP, "down": Role.DOWN}


def options(written: str) -> dict[str, str]:
    """``transaction:false foo:bar`` -> ``{"transaction": "false", "foo": "bar"}``, as dbmate
    reads them (a word that is not one ``key:value`` pair is ignored)."""
    pairs = (word.split(":") for word in written.split())
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def read_marker(line: str, number: int) -> Marker | Problem | None:
    """One comment line, as dbmate reads it."""
    match = _MARKER.match(line)
    if match:
        found = options(match.group("options") or "")
        role = _ROLES[match.group("role")]
        return Marker(
            role, number, line.strip(), no_transaction=found.get("transaction") == "false"
        )
    if _LOOSE.match(line):
        why = "dbmate reads `-- migrate:up` and `-- migrate:down` only, lower case, not indented"
        return misread(number, line, "dbmate", why)
    return None


GRAMMAR = Grammar(
    tool="dbmate",
    spelling={Role.UP: "-- migrate:up", Role.DOWN: "-- migrate:down"},
    read=read_marker,
    up_first=True,
)
_VERSION = re.compile(r"\d+")


class DbmateFormat(MarkedFormat):
    name = "dbmate"
    grammar = GRAMMAR

    def listed(self, filename: str) -> bool:
        return filename.endswith(".sql") and filename[:1].isdigit()

    def version_of(self, filename: str) -> str | None:
        match = _VERSION.match(filename)
        return match.group() if match else None

    def name_problems(self, entry: Entry) -> tuple[Problem, ...]:
        return ()
