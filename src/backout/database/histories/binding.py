"""Which tool's table says what a folder has applied: configured, or detected.

:func:`bind` returns a :class:`Bound` history: the adapter and its table. A configured tool
(``history``, ``histories``) is used as said; otherwise the tables in the database decide: the
tool whose migration format the folder has first, then backout's own, then every other tool,
each looked for under its default name (or the one ``history_tables`` gives) and recognised by
its columns. With none there, the folder has backout's own history (created when first needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from backout.config import Settings
from backout.database.histories import adapter, tool_names
from backout.database.histories.base import History, Recorded, columns_of
from backout.database.history import Applied
from backout.migrations.entry import Entry

FORMAT_TOOLS = {
    "strategy": "backout",
    "dbmate": "dbmate",
    "goose": "goose",
    "golang-migrate": "golang-migrate",
    "node-pg-migrate": "node-pg-migrate",
    "flyway": "flyway",
    "liquibase": "liquibase",
    "directory": "diesel",
}
"""The tool that usually writes a folder of each format's migrations: tried first."""


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
    for tool in _candidates(format_name):
        history = adapter(tool)
        table = table_of(settings, folder, tool)
        columns = columns_of(conn, table)
        if columns and history.recognises(columns):
            return Bound(history, table)
    return Bound(adapter("backout"), settings.history_table(folder))


def table_of(settings: Settings, folder: Path, tool: str) -> str:
    """The table ``tool`` keeps ``folder``'s history in: ``history_tables`` names it, else
    backout's naming for its own, else the tool's default name."""
    if folder in settings.history_tables or tool == "backout":
        return settings.history_table(folder)
    return adapter(tool).default_table


def _candidates(format_name: str) -> list[str]:
    first = FORMAT_TOOLS.get(format_name, "backout")
    listed = tool_names()
    return [t for t in dict.fromkeys([first, "backout", *listed]) if t in listed]
