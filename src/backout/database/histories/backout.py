"""backout's own history table: the strategy's ``schema_migrations`` with backout's columns.

See :mod:`backout.database.history` for its layout; a rollback removes the row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from backout.database.histories.base import Recorded
from backout.database.history import (
    Applied,
    ensure_history,
    read_history,
    record_applied,
    remove_applied,
)
from backout.migrations.entry import Entry

REQUIRED = {"version", "name", "applied_at"}


class BackoutHistory:
    tool = "backout"
    default_table = "schema_migrations"

    def recognises(self, columns: Mapping[str, str]) -> bool:
        return set(columns) >= REQUIRED

    def create(self, conn: psycopg.Connection[Any], table: str) -> None:
        ensure_history(conn, table)

    def read(self, conn: psycopg.Connection[Any], table: str, entries: Sequence[Entry]) -> Recorded:
        return Recorded(read_history(conn, table))

    def record_applied(
        self,
        conn: psycopg.Connection[Any],
        table: str,
        entry: Entry,
        entries: Sequence[Entry],
        applied: Applied,
    ) -> None:
        record_applied(conn, table, applied)

    def record_rolled_back(
        self, conn: psycopg.Connection[Any], table: str, entry: Entry, entries: Sequence[Entry]
    ) -> None:
        remove_applied(conn, table, entry.version or "")


BACKOUT = BackoutHistory()
