"""node-pg-migrate (salsita/node-pg-migrate) SQL migrations: ``<timestamp>_<name>.sql`` with
``-- Up Migration`` and ``-- Down Migration`` sections.

Read as node-pg-migrate reads them: a marker is a comment line (indent allowed) of dashes and
spaces, then ``up`` or ``down``, spaces and ``migration``, in any case, anything after; the
sections may come in either order. A file without an up marker is all up section; without a
down marker it has no rollback. node-pg-migrate finds its markers with a regular expression over
the whole text, so a marker inside a ``$$`` body or a string splits the file there (its known
trap): backout takes markers from comment lines only. A file with a down marker but no up marker
is refused: node-pg-migrate would run all of it, the down SQL included, as the migration.
Versions are the number before the first ``_`` (13-digit milliseconds or 17-digit UTC).
"""

from __future__ import annotations

import re

from backout.migrations.formats.sections import Grammar, MarkedFormat, Marker, Role, misread
from backout.migrations.statements import Problem

_MARKER = re.compile(r"^\s*--[\s-]*(?P<role>up|down)\s+migration", re.IGNORECASE)
_LOOSE = re.compile(r"^\s*--[\s-]*(?:up|down)[\s_-]*migrations?\b", re.IGNORECASE)


def read_marker(line: str, number: int) -> Marker | Problem | None:
    """One comment line, as node-pg-migrate reads it."""
    match = _MARKER.match(line)
    if match:
        role = Role.UP if match.group("role").lower() == "up" else Role.DOWN
        return Marker(role, number, line.strip())
    if _LOOSE.match(line):
        why = "node-pg-migrate reads `-- Up Migration` and `-- Down Migration` (space between)"
        return misread(number, line, "node-pg-migrate", why)
    return None


GRAMMAR = Grammar(
    tool="node-pg-migrate",
    spelling={Role.UP: "-- Up Migration", Role.DOWN: "-- Down Migration"},
    read=read_marker,
    implicit_up=True,
)


class NodePgMigrateFormat(MarkedFormat):
    name = "node-pg-migrate"
    grammar = GRAMMAR
