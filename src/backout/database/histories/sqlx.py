"""sqlx's history table (launchbadge/sqlx): ``_sqlx_migrations``, one row per applied migration.

Source of truth: launchbadge/sqlx 0.8 ``sqlx-postgres/src/migrate.rs`` (``ensure_migrations_table``:
the DDL; ``execute_migration``: ``INSERT (version, description, success, checksum,
execution_time) VALUES ($1, $2, TRUE, $3, -1)`` in the migration's transaction, then
``execution_time`` set to the elapsed nanoseconds; ``revert_migration``: ``DELETE ... WHERE
version = $1``; ``dirty_version``: a row with ``success = false``), ``sqlx-core/src/migrate/``
``migration.rs`` (the checksum: SHA-384 of the file's SQL), ``source.rs`` and
``migration_type.rs`` (``<VERSION>_<DESCRIPTION>.sql``, ``.up.sql``/``.down.sql``: the
description is the name after the first ``_`` without the suffix, ``_`` read as a space) and
``error.rs`` (``Dirty``: "migration {0} is partially applied; fix and remove row from
`_sqlx_migrations` table").

A row with ``success = false`` is a migration applied part-way: ``sqlx migrate run`` refuses to
run while there is one. backout names it and never removes that row: rolling it back is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from backout.database.histories.base import Recorded, Trouble, by_number, delete_where
from backout.database.histories.goose import number_of
from backout.database.history import Applied, table_ident
from backout.errors import RefusedError
from backout.migrations.entry import Entry

REQUIRED = {"version", "description", "installed_on", "success", "checksum", "execution_time"}
SUFFIXES = (".up.sql", ".down.sql", ".sql")
"""sqlx's ``MigrationType`` suffixes, in the order it tries them."""


class SqlxHistory:
    tool = "sqlx"
    default_table = "_sqlx_migrations"

    def recognises(self, columns: Mapping[str, str]) -> bool:
        return set(columns) >= REQUIRED and columns.get("checksum") == "bytea"

    def create(self, conn: psycopg.Connection[Any], table: str) -> None:
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (version BIGINT PRIMARY KEY,"
                " description TEXT NOT NULL, installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),"
                " success BOOLEAN NOT NULL, checksum BYTEA NOT NULL,"
                " execution_time BIGINT NOT NULL)"
            ).format(table_ident(table))
        )

    def read(self, conn: psycopg.Connection[Any], table: str, entries: Sequence[Entry]) -> Recorded:
        rows = conn.execute(
            sql.SQL(
                "SELECT version, description, installed_on, success, execution_time FROM {}"
                " ORDER BY version"
            ).format(table_ident(table))
        ).fetchall()
        numbered = by_number(entries)
        applied: dict[str, Applied] = {}
        troubles: list[Trouble] = []
        for version, description, at, success, nanoseconds in rows:
            entry = numbered.get(version)
            key, name = (entry.version or "", entry.name) if entry else (str(version), description)
            elapsed = nanoseconds // 1_000_000 if nanoseconds >= 0 else None
            applied[key] = Applied(key, name, at, None, None, execution_ms=elapsed)
            if not success:
                troubles.append(partly_applied(version, name, table))
        return Recorded(applied, tuple(troubles))

    def record_applied(
        self,
        conn: psycopg.Connection[Any],
        table: str,
        entry: Entry,
        entries: Sequence[Entry],
        applied: Applied,
    ) -> None:
        elapsed = applied.execution_ms * 1_000_000 if applied.execution_ms is not None else -1
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (version, description, success, checksum, execution_time)"
                " VALUES (%s, %s, TRUE, %s, %s)"
            ).format(table_ident(table)),
            (number_of(entry, "sqlx"), description(entry), checksum(entry), elapsed),
        )

    def record_rolled_back(
        self, conn: psycopg.Connection[Any], table: str, entry: Entry, entries: Sequence[Entry]
    ) -> None:
        version = number_of(entry, "sqlx")
        row = conn.execute(
            sql.SQL("SELECT success FROM {} WHERE version = %s").format(table_ident(table)),
            (version,),
        ).fetchone()
        if row is not None and not row[0]:
            trouble = partly_applied(version, entry.name, table)
            raise RefusedError(trouble.what, hint=trouble.way_out)
        delete_where(conn, table, "version", version)


def description(entry: Entry) -> str:
    """The description sqlx records: the file name after the first ``_``, without its
    ``.up.sql``/``.down.sql``/``.sql`` suffix, ``_`` read as a space."""
    rest = entry.path.name.partition("_")[2]
    suffix = next(s for s in (*SUFFIXES, "") if rest.endswith(s))
    while suffix and rest.endswith(suffix):
        rest = rest.removesuffix(suffix)
    return rest.replace("_", " ")


def checksum(entry: Entry) -> bytes:
    """sqlx's checksum of a migration: SHA-384 of its (up) file, as read."""
    return hashlib.sha384(entry.path.read_bytes()).digest()


def partly_applied(version: int, name: str, table: str) -> Trouble:
    return Trouble(
        name,
        f"sqlx's table marks {name} as not successful (success = false): it was applied "
        f'part-way, and `sqlx migrate run` refuses to run ("migration {version} is partially '
        f'applied; fix and remove row from `{table}` table")',
        "check the schema and undo by hand what it did; then delete its row (`DELETE FROM "
        f"{table} WHERE version = {version}`) so `sqlx migrate run` applies it again; backout "
        "does not remove the row",
    )


SQLX = SqlxHistory()
