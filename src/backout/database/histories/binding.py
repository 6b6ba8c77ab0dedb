"""Which tool's table says what a folder has applied: configured, or detected.

:func:`bind` returns a :class:`Bound` history: the adapter and its table. A configured tool
(``history``, ``histories``) is used as said. Otherwise a folder in the strategy's own format
is backout's (a table another tool left in the database never takes it over), and for the other
formats the tables in the database decide: the tool whose format the folder has first, then
backout's own, then every other tool, each looked for under its default name (or the one
``history_tables`` gives) and recognised by its columns. With none there, the folder has
backout's own history (created when first needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import psycopg

from backout.config import FORMAT_TOOLS, Settings
from backout.database.histories import adapter, tool_names
from backout.database.histories.base import History, Recorded, columns_of
from backout.database.history import Applied
from backout.migrations.catalog import Catalog
from backout.migrations.entry import Entry
from backout.migrations.file import MigrationFile


@dataclass(frozen=True)
class Bound:
    """A folder's history: the tool, its table, and whether the configuration named the tool
    (backout writes a foreign tool's table only then)."""

    history: History
    table: str
    configured: bool = False

    @property
    def tool(self) -> str:
        return self.history.tool

    @property
    def foreign(self) -> bool:
        """Another tool's table, not backout's own."""
        return self.history.tool != "backout"

    def read(self, conn: psycopg.Connection[Any], entries: Sequence[Entry]) -> Recorded:
        if not columns_of(conn, self.table):
            return Recorded()
        return self.history.read(conn, self.table, entries)

    def record_applied(
        self,
        conn: psycopg.Connection[Any],
        entry: Entry,
        entries: Sequence[Entry],
        applied: Applied,
    ) -> None:
        self.history.record_applied(conn, self.table, entry, entries, applied)

    def record_rolled_back(
        self, conn: psycopg.Connection[Any], entry: Entry, entries: Sequence[Entry]
    ) -> None:
        self.history.record_rolled_back(conn, self.table, entry, entries)

    def check_rollback(
        self, conn: psycopg.Connection[Any], entry: Entry, entries: Sequence[Entry]
    ) -> None:
        """Raise what recording ``entry`` rolled back would raise (a dirty table, a rollback
        the tool's table cannot express), by recording it in a transaction always rolled
        back: asked before anything runs, so nothing fails after the rollback's SQL."""
        if not self.foreign:
            return
        with conn.transaction(force_rollback=True):
            self.history.record_rolled_back(conn, self.table, entry, entries)

    def ensure(self, conn: psycopg.Connection[Any]) -> None:
        """The table, created the tool's way when missing (backout's own: upgraded too)."""
        if not self.foreign or not columns_of(conn, self.table):
            self.history.create(conn, self.table)


def bind(
    conn: psycopg.Connection[Any], settings: Settings, folder: Path, format_name: str
) -> Bound:
    """The history of ``folder`` (whose migrations are in ``format_name``) on ``conn``."""
    configured = settings.histories.get(folder)
    if configured is not None:
        return Bound(adapter(configured), table_of(settings, folder, configured), True)
    found = _DETECTED.setdefault(conn, {})
    key = (folder, format_name, settings.history_table(folder))
    if key in found:
        return found[key]
    for tool in _candidates(format_name):
        history = adapter(tool)
        table = table_of(settings, folder, tool)
        columns = columns_of(conn, table)
        if columns and history.recognises(columns):
            found[key] = Bound(history, table)
            return found[key]
    return Bound(adapter("backout"), settings.history_table(folder))


_DETECTED: WeakKeyDictionary[psycopg.Connection[Any], dict[tuple[Path, str, str], Bound]]
_DETECTED = WeakKeyDictionary()
"""Each connection's tables found so far: a command asks for a folder's history several times
(plan, plan again under the lock, the blast radius, the rehearsal), and a table the detection
recognised stays that tool's for the connection's life. Only what was found is kept: where no
table was there yet, the next question looks again."""


def table_of(settings: Settings, folder: Path, tool: str) -> str:
    """The table ``tool`` keeps ``folder``'s history in: ``history_tables`` names it, else
    backout's naming for its own, else the tool's default name."""
    if folder in settings.history_tables or tool == "backout":
        return settings.history_table(folder)
    return adapter(tool).default_table


def _candidates(format_name: str) -> list[str]:
    """The tools to look for, in order. A folder in the strategy's own format is backout's
    unless configured: a table another tool left in the database never takes it over."""
    if format_name == "strategy":
        return ["backout"]
    first = FORMAT_TOOLS.get(format_name, "backout")
    listed = tool_names()
    return [t for t in dict.fromkeys([first, "backout", *listed]) if t in listed]


def history_of(
    conn: psycopg.Connection[Any], settings: Settings, catalog: Catalog, folder: Path
) -> Bound:
    """The history of one of ``catalog``'s folders."""
    return bind(conn, settings, folder, catalog.format_of(folder))


def applied_in(
    conn: psycopg.Connection[Any], settings: Settings, catalog: Catalog, folder: Path
) -> Mapping[str, Applied]:
    """What ``folder``'s history says is applied, by version."""
    bound = history_of(conn, settings, catalog, folder)
    return bound.read(conn, catalog.in_folder(folder)).applied


def entry_of(catalog: Catalog, migration: MigrationFile) -> Entry:
    """The catalog's entry for a parsed migration (by its file, else its folder and name)."""
    entries = catalog.in_folder(migration.folder)
    for entry in entries:  # by name first: one Liquibase file holds several changesets
        if entry.name == migration.name:
            return entry
    for entry in entries:
        if entry.path == migration.path:
            return entry
    return Entry(migration.path, migration.folder, migration.name, migration.version)
