"""What every history adapter is: how a migration tool records what is applied, read and
written the way that tool does.

An adapter never decides anything: it reads the tool's table into backout's
:class:`~backout.database.history.Applied` rows (keyed by the catalog's versions), names the
troubles the tool recorded (a dirty flag, a failed row) in plain words, and writes the table
exactly as the tool's own ``up`` and ``down`` do, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from psycopg import sql

from backout.database.history import Applied, table_ident
from backout.migrations.entry import Entry


@dataclass(frozen=True)
class Trouble:
    """A state the tool recorded that needs a person: a migration half-applied ("dirty"), a
    failed row. backout explains it and never clears it silently."""

    migration: str | None
    """The migration it concerns (its name, or the tool's key when no file matches)."""
    what: str
    """What the tool's table says, in plain words."""
    way_out: str
    """The safe way out, as commands or steps."""

    def describe(self) -> str:
        return f"{self.what}; {self.way_out}"


@dataclass(frozen=True)
class Recorded:
    """What a tool's table says: the applied migrations, and any trouble."""

    applied: Mapping[str, Applied] = field(default_factory=dict)
    """By the catalog entry's ``version``; a row no file matches is keyed by the tool's own
    key (its ``name`` is what the row says), so ``status`` shows it as missing."""
    troubles: tuple[Trouble, ...] = ()


class History(Protocol):
    """One migration tool's history table."""

    @property
    def tool(self) -> str:
        """The name ``history = "..."`` takes: ``dbmate``, ``goose``..."""

    @property
    def default_table(self) -> str:
        """The table the tool uses when not told otherwise."""

    def recognises(self, columns: Mapping[str, str]) -> bool:
        """Whether a table with these columns (name to ``format_type``) is this tool's."""

    def create(self, conn: psycopg.Connection[Any], table: str) -> None:
        """Create the table as the tool creates it (only when backout applies)."""

    def read(self, conn: psycopg.Connection[Any], table: str, entries: Sequence[Entry]) -> Recorded:
        """The table's rows matched to ``entries`` (the folder's migrations, in order)."""

    def record_applied(
        self,
        conn: psycopg.Connection[Any],
        table: str,
        entry: Entry,
        entries: Sequence[Entry],
        applied: Applied,
    ) -> None:
        """Record ``entry`` applied, as the tool's ``up`` does."""

    def record_rolled_back(
        self, conn: psycopg.Connection[Any], table: str, entry: Entry, entries: Sequence[Entry]
    ) -> None:
        """Record ``entry`` rolled back, as the tool's own ``down`` does."""


def columns_of(conn: psycopg.Connection[Any], table: str) -> dict[str, str]:
    """The columns of ``table`` (name to ``format_type``); empty when there is no such table."""
    rows = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (table,),
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def delete_where(conn: psycopg.Connection[Any], table: str, column: str, value: object) -> None:
    """``DELETE FROM table WHERE column = value``: how most tools' ``down`` forgets a migration."""
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE {} = %s").format(table_ident(table), sql.Identifier(column)),
        (value,),
    )


def by_number(entries: Sequence[Entry]) -> dict[int, Entry]:
    """The entries whose version is one number, by that number (``0042`` and ``42`` alike)."""
    return {e.number: e for e in entries if e.number is not None}
