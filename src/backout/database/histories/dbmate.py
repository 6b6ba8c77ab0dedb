"""dbmate's history table: ``schema_migrations``, one ``version`` per applied migration.

The source of truth is dbmate's PostgreSQL driver, ``pkg/driver/postgres/postgres.go`` in
amacneil/dbmate (read at v2.36.0, the version the round-trip tests run):

- ``CreateMigrationsTable``: ``create table if not exists <schema>.<table> (version varchar
  primary key)`` in the current schema (earlier releases, and dbmate's README, say
  ``varchar(255)``: any length is dbmate's);
- ``InsertMigration`` (``up``): ``insert into <table> (version) values ($1)``;
- ``DeleteMigration`` (``rollback``): ``delete from <table> where version = $1``, in the
  transaction that ran the down section.

The version is the file name's leading digits, compared as a string. dbmate records nothing
else (no name, no time), and has no dirty or failed state: a migration that fails rolls back
with its row, so there is never a trouble to explain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from backout.database.histories.base import Recorded, delete_where
from backout.database.history import Applied, table_ident
from backout.migrations.entry import Entry

_VARCHAR = re.compile(r"character varying(\(\d+\))?")


class DbmateHistory:
    tool = "dbmate"
    default_table = "schema_migrations"

    def recognises(self, columns: Mapping[str, str]) -> bool:
        """Only ``version varchar``: backout's table (also ``schema_migrations``) has a name and
        a time, golang-migrate's a ``bigint`` version and ``dirty``."""
        return list(columns) == ["version"] and _VARCHAR.fullmatch(columns["version"]) is not None

    def create(self, conn: psycopg.Connection[Any], table: str) -> None:
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (version varchar PRIMARY KEY)").format(
                table_ident(table)
            )
        )

    def read(self, conn: psycopg.Connection[Any], table: str, entries: Sequence[Entry]) -> Recorded:
        """Each row matched to the file with its version; a row no file has is kept under its
        version (``status`` shows it as missing)."""
        rows = conn.execute(
            sql.SQL("SELECT version FROM {} ORDER BY version").format(table_ident(table))
        ).fetchall()
        files = {e.version: e for e in entries if e.version is not None}
        applied: dict[str, Applied] = {}
        for (version,) in rows:
            entry = files.get(version)
            applied[version] = _applied(version, entry.name if entry else version)
        return Recorded(applied)

    def record_applied(
        self,
        conn: psycopg.Connection[Any],
        table: str,
        entry: Entry,
        entries: Sequence[Entry],
        applied: Applied,
    ) -> None:
        """As dbmate's ``up``: the version alone."""
        conn.execute(
            sql.SQL("INSERT INTO {} (version) VALUES (%s)").format(table_ident(table)),
            (_version(entry),),
        )

    def record_rolled_back(
        self, conn: psycopg.Connection[Any], table: str, entry: Entry, entries: Sequence[Entry]
    ) -> None:
        """As dbmate's ``rollback``: the version's row deleted."""
        delete_where(conn, table, "version", _version(entry))


def _applied(version: str, name: str) -> Applied:
    # dbmate records no time and no user.
    return Applied(version, name, applied_at=None, applied_by=None, checksum=None)


def _version(entry: Entry) -> str:
    # dbmate lists only files whose name starts with digits, so a dbmate entry has a version.
    return entry.version or entry.name


DBMATE = DbmateHistory()
