"""sql-migrate (rubenv/sql-migrate) migrations: ``.sql`` files with ``-- +migrate Up`` and
``-- +migrate Down`` sections, sorted by the number their name starts with.

Read as its ``sqlparse`` reads them: a marker is a line starting exactly with ``-- +migrate ``
(no indent, one space each side of ``--``) followed by ``Up``, ``Down``, ``StatementBegin`` or
``StatementEnd`` as written; ``notransaction`` after ``Up`` or ``Down`` runs that section outside
a transaction. sql-migrate silently ignores a marker written otherwise (``-- +migrate up``,
``--+migrate Down``), which would leave the down SQL in the up section: backout refuses such a
line. The sections may come in either order; one of each.
"""

from __future__ import annotations

import re

from backout.migrations.entry import Entry
from backout.migrations.formats.sections import Grammar, MarkedFormat, Marker, Role, misread
from backout.migrations.statements import Problem

PREFIX = "-- +migrate "
COMMANDS = {
    "Up": Role.UP,
    "Down": Role.DOWN,
    "StatementBegin": Role.BEGIN,
    "StatementEnd": Role.END,
}
NO_TRANSACTION = "notransaction"
_LOOSE = re.compile(
    r"^\s*--+\s*\+\s*migrate\b"
    r"|^\s*--+\s*migrate\s+(?:up|down|statement\s*(?:begin|end))(?:\s+notransaction)?\s*$",
    re.IGNORECASE,
)
_IGNORED = "ignores the line and would run what follows as part of the section above"


def read_marker(line: str, number: int) -> Marker | Problem | None:
    """One comment line, as sql-migrate reads it."""
    if line.startswith(PREFIX):
        fields = line[len(PREFIX) :].split()
        if not fields:
            return misread(number, line, "sql-migrate", "it names no command", "refuses the file")
        role = COMMANDS.get(fields[0])
        if role is None:
            why = "sql-migrate knows only Up, Down, StatementBegin and StatementEnd, as written"
            return misread(number, line, "sql-migrate", why, _IGNORED)
        no_transaction = role in (Role.UP, Role.DOWN) and NO_TRANSACTION in fields[1:]
        return Marker(role, number, line.strip(), no_transaction=no_transaction)
    if _LOOSE.match(line):
        why = "sql-migrate reads a marker only from a line starting exactly with `-- +migrate `"
        return misread(number, line, "sql-migrate", why, _IGNORED)
    return None


GRAMMAR = Grammar(
    tool="sql-migrate",
    spelling={
        Role.UP: "-- +migrate Up",
        Role.DOWN: "-- +migrate Down",
        Role.BEGIN: "-- +migrate StatementBegin",
        Role.END: "-- +migrate StatementEnd",
    },
    read=read_marker,
    needs_semicolons=True,
)
_LEADING_DIGITS = re.compile(r"\d+")


class SqlMigrateFormat(MarkedFormat):
    name = "sql-migrate"
    grammar = GRAMMAR

    def version_of(self, filename: str) -> str | None:
        match = _LEADING_DIGITS.match(filename)
        return match.group() if match else None

    def name_problems(self, entry: Entry) -> tuple[Problem, ...]:
        if entry.version is None:
            return (
                Problem(
                    "name-format",
                    1,
                    f"{entry.path.name} has no version backout can record: sql-migrate sorts "
                    "it by name, backout needs the number a name starts with "
                    "(`<version>_<name>.sql`); rename it before it is applied",
                ),
            )
        return ()
