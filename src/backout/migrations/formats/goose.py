"""goose (pressly/goose) SQL migrations: ``<version>_<name>.sql`` with ``-- +goose Up`` and
``-- +goose Down`` sections.

Read as goose reads them (its ``sqlparser``): an annotation is a comment line holding ``+goose``,
not indented, ``-- +goose <Annotation>`` in any case (``Up``, ``Down``, ``StatementBegin``,
``StatementEnd``, ``NO TRANSACTION``, ``ENVSUB ON``, ``ENVSUB OFF``); any other ``+goose``
comment is refused, as goose refuses it. ``NO TRANSACTION`` anywhere makes both sections run
outside a transaction. Comments before ``Up`` are notes (goose ignores them); a file with no
``Up``, a ``Down`` before it, a second ``Up`` or ``Down``, a ``StatementBegin`` never ended or a
statement without its ``;`` outside a block are refused, as goose refuses them. ``ENVSUB ON`` is
noted, never applied: a statement goose would substitute into is refused.
"""

from __future__ import annotations

import re

from backout.migrations.entry import Entry
from backout.migrations.formats.sections import Grammar, MarkedFormat, Marker, Role, misread
from backout.migrations.statements import Problem

ANNOTATIONS = {
    "up": Role.UP,
    "down": Role.DOWN,
    "statementbegin": Role.BEGIN,
    "statementend": Role.END,
    "no transaction": Role.NO_TRANSACTION,
    "envsub on": Role.ENVSUB_ON,
    "envsub off": Role.ENVSUB_OFF,
}
_LOOSE = re.compile(
    r"^\s*--+\s*\+?\s*goose\s+"
    r"(?:up|down|statement\s*(?:begin|end)|no\s*transaction|envsub\s+o(?:n|ff))\s*$",
    re.IGNORECASE,
)
_REFUSES = "refuses the file"


def read_marker(line: str, number: int) -> Marker | Problem | None:
    """One comment line, as goose reads it."""
    if "+goose" not in line:
        if "+goose" in line.lower() or _LOOSE.match(line):
            return misread(number, line, "goose", "goose reads `-- +goose <Annotation>` only")
        return None
    if line[:1] in (" ", "\t"):
        return misread(number, line, "goose", "it is indented", _REFUSES)
    command = line.replace("--", "").replace("+goose", "", 1)
    if "+goose" in command:
        return misread(number, line, "goose", "it holds two annotations", _REFUSES)
    role = ANNOTATIONS.get(command.strip().lower())
    if role is None:
        why = (
            "goose knows only Up, Down, StatementBegin, StatementEnd, NO TRANSACTION, ENVSUB ON/OFF"
        )
        return misread(number, line, "goose", why, _REFUSES)
    return Marker(role, number, line.strip())


GRAMMAR = Grammar(
    tool="goose",
    spelling={
        Role.UP: "-- +goose Up",
        Role.DOWN: "-- +goose Down",
        Role.BEGIN: "-- +goose StatementBegin",
        Role.END: "-- +goose StatementEnd",
        Role.NO_TRANSACTION: "-- +goose NO TRANSACTION",
        Role.ENVSUB_ON: "-- +goose ENVSUB ON",
        Role.ENVSUB_OFF: "-- +goose ENVSUB OFF",
    },
    read=read_marker,
    up_first=True,
    needs_semicolons=True,
)


class GooseFormat(MarkedFormat):
    name = "goose"
    grammar = GRAMMAR

    def name_problems(self, entry: Entry) -> tuple[Problem, ...]:
        if entry.version is not None and int(entry.version) == 0:
            return (
                Problem(
                    "name-format",
                    1,
                    f"{entry.path.name}: goose refuses version 0 (migration versions start at "
                    "1); rename it before it is applied",
                ),
            )
        return super().name_problems(entry)
