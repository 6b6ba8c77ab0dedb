"""diesel's history table (diesel-rs/diesel): ``__diesel_schema_migrations``, one row per
applied migration directory.

Source of truth: diesel 2.x ``diesel/src/migration/setup_migration_table.sql`` (the DDL),
``diesel_migrations/src/migration_harness.rs`` (``run_migration`` inserts the version,
``revert_migration`` deletes it, both in the migration's transaction unless ``metadata.toml``
says ``run_in_transaction = false``; ``applied_migrations`` reads ``ORDER BY version DESC``)
and ``migrations_internals/src/lib.rs`` (``version_from_string``: the directory name before the
first ``_``, dashes removed, as :func:`backout.migrations.formats.directory.version_of` reads it).

Versions are text, matched exactly (``0001`` is not ``1``). diesel records no failure: a
migration that failed in a transaction left nothing; one outside a transaction left its first
statements done and no row, which the table cannot show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from backout.database.histories.base import Recorded, delete_where
from backout.database.history import Applied, table_ident
from backout.errors import UsageError
from backout.migrations.entry import Entry

COLUMNS = {"version", "run_on"}


class DieselHistory:
    tool = "diesel"
    default_table = "__diesel_schema_migrations"

    def recognises(self, columns: Mapping[str, str]) -> bool:
        return set(columns) == COLUMNS

    def create(self, conn: psycopg.Connection[Any], table: str) -> None:
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (version VARCHAR(50) PRIMARY KEY NOT NULL,"
                " run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            ).format(table_ident(table))
        )

    def read(self, conn: psycopg.Connection[Any], table: str, entries: Sequence[Entry]) -> Recorded:
        rows = conn.execute(
            sql.SQL("SELECT version, run_on::timestamptz FROM {} ORDER BY version").format(
                table_ident(table)
            )
        ).fetchall()
        by_version = {e.version: e for e in entries if e.version is not None}
        applied: dict[str, Applied] = {}
        for version, at in rows:
            entry = by_version.get(version)
            applied[version] = Applied(version, entry.name if entry else version, at, None, None)
        return Recorded(applied)

    def record_applied(
        self,
        conn: psycopg.Connection[Any],
        table: str,
        entry: Entry,
        entries: Sequence[Entry],
        applied: Applied,
    ) -> None:
        conn.execute(
            sql.SQL("INSERT INTO {} (version) VALUES (%s)").format(table_ident(table)),
            (version_of(entry),),
        )

    def record_rolled_back(
        self, conn: psycopg.Connection[Any], table: str, entry: Entry, entries: Sequence[Entry]
    ) -> None:
        delete_where(conn, table, "version", version_of(entry))


def version_of(entry: Entry) -> str:
    if entry.version is None:
        raise UsageError(
            f"{entry.name} has no version: diesel records the directory name before its first "
            "`_`, without dashes",
            hint="name the directory <version>_<name>, e.g. 2024-01-15-093000_create_users",
        )
    return entry.version


DIESEL = DieselHistory()
