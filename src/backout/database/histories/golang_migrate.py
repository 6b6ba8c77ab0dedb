"""golang-migrate's history table: ``schema_migrations (version bigint, dirty boolean)``.

Source of truth: golang-migrate/migrate v4 ``database/postgres/postgres.go``
(``ensureVersionTable``: the DDL; ``SetVersion``: ``TRUNCATE`` then, for a version,
``INSERT (version, dirty)``; ``Version``: ``SELECT version, dirty ... LIMIT 1``) and
``migrate.go`` (a step sets its target version dirty, runs, then sets it clean).
``GETTING_STARTED.md`` ("Forcing your database version") is the way out of a dirty state.

The table holds one row: the newest applied version; every migration numbered at or below it is
applied. It records no time. ``down`` of version V sets the row to the previous version the
folder has (the greatest below V), or empties the table when there is none (golang-migrate's
nil version, -1); ``up`` of V sets it to V. ``dirty = true`` means the step to that version
failed part-way: golang-migrate refuses every command until ``migrate force``; so does backout,
which never clears the flag. A migration below the newest cannot be rolled back alone: one
number cannot say "all but this one".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from backout.database.histories.base import Recorded, Trouble, by_number
from backout.database.histories.goose import number_of
from backout.database.history import Applied, table_ident
from backout.errors import RefusedError
from backout.migrations.entry import Entry

COLUMNS = {"version": "bigint", "dirty": "boolean"}
NIL = -1
"""golang-migrate's ``database.NilVersion``: nothing applied."""


class GolangMigrateHistory:
    tool = "golang-migrate"
    default_table = "schema_migrations"

    def recognises(self, columns: Mapping[str, str]) -> bool:
        return dict(columns) == COLUMNS

    def create(self, conn: psycopg.Connection[Any], table: str) -> None:
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (version bigint not null primary key,"
                " dirty boolean not null)"
            ).format(table_ident(table))
        )

    def read(self, conn: psycopg.Connection[Any], table: str, entries: Sequence[Entry]) -> Recorded:
        row = current(conn, table)
        if row is None:
            return Recorded()
        version, dirty = row
        rows: dict[str, Applied] = {}
        for number, entry in sorted(by_number(entries).items()):
            if number <= version:
                rows[entry.version or ""] = _applied(entry.version or "", entry.name)
        if version != NIL and version not in by_number(entries):
            rows[str(version)] = _applied(str(version), str(version))
        troubles = (dirty_trouble(version, entries),) if dirty else ()
        return Recorded(rows, troubles)

    def record_applied(
        self,
        conn: psycopg.Connection[Any],
        table: str,
        entry: Entry,
        entries: Sequence[Entry],
        applied: Applied,
    ) -> None:
        version, dirty = current(conn, table) or (NIL, False)
        if dirty:
            raise _dirty_refusal(version, entries)
        number = number_of(entry, "golang-migrate")
        skipped = [e.name for n, e in sorted(by_number(entries).items()) if version < n < number]
        if number <= version:
            raise RefusedError(
                f"golang-migrate's table already records version {version}, at or above "
                f"{entry.name}: one version number cannot record it applied on its own",
                hint="roll back the later migrations first, newest first",
            )
        if skipped:
            raise RefusedError(
                f"golang-migrate records only its newest version ({version}): recording "
                f"{entry.name} applied would also say {', '.join(skipped)} is applied",
                hint="apply the migrations in order, oldest first",
            )
        set_version(conn, table, number)

    def record_rolled_back(
        self, conn: psycopg.Connection[Any], table: str, entry: Entry, entries: Sequence[Entry]
    ) -> None:
        version, dirty = current(conn, table) or (NIL, False)
        if dirty:
            raise _dirty_refusal(version, entries)
        number = number_of(entry, "golang-migrate")
        if number != version:
            raise RefusedError(
                f"golang-migrate records only its newest version ({version}), and {entry.name} "
                "is not it: one version number cannot say that the later migrations stay "
                "applied while this one is rolled back",
                hint="roll back the later migrations first, newest first",
            )
        set_version(conn, table, previous(number, entries))


def current(conn: psycopg.Connection[Any], table: str) -> tuple[int, bool] | None:
    """The table's version and dirty flag, as golang-migrate's ``Version`` reads them."""
    row = conn.execute(
        sql.SQL("SELECT version, dirty FROM {} LIMIT 1").format(table_ident(table))
    ).fetchone()
    return (int(row[0]), bool(row[1])) if row else None


def set_version(conn: psycopg.Connection[Any], table: str, version: int) -> None:
    """The one row golang-migrate's ``SetVersion(version, false)`` leaves: none for the nil
    version. (It truncates; a ``DELETE`` leaves the same rows without taking the table's
    ACCESS EXCLUSIVE lock for the rest of the rollback's transaction.)"""
    conn.execute(sql.SQL("DELETE FROM {}").format(table_ident(table)))
    if version != NIL:
        conn.execute(
            sql.SQL("INSERT INTO {} (version, dirty) VALUES (%s, false)").format(
                table_ident(table)
            ),
            (version,),
        )


def previous(number: int, entries: Sequence[Entry]) -> int:
    """The folder's greatest version below ``number``; the nil version when there is none."""
    return max((n for n in by_number(entries) if n < number), default=NIL)


def dirty_trouble(version: int, entries: Sequence[Entry]) -> Trouble:
    """What a dirty flag means, and the way out golang-migrate documents (``force``)."""
    entry = by_number(entries).get(version)
    if version == NIL:
        first = min(by_number(entries), default=None)
        return Trouble(
            None,
            "golang-migrate's table is dirty at no version (-1): the down of the first "
            "migration failed part-way, and golang-migrate refuses every command until forced",
            "check the schema and finish or undo that down by hand; then `migrate force -1` if "
            f"nothing of it remains, or `migrate force {first}` if its up is still whole; "
            "backout does not clear the flag",
        )
    name = entry.name if entry else str(version)
    return Trouble(
        name,
        f"golang-migrate's table says version {version} is dirty: the step to it (the up of "
        f"{name}, or the down of the migration after it) failed part-way, and golang-migrate "
        "refuses every command until forced",
        f"check the schema and finish or undo that step by hand; then `migrate force {version}` "
        f"if {name} is wholly applied, or `migrate force {previous(version, entries)}` if "
        "none of it is; backout does not clear the flag",
    )


def _dirty_refusal(version: int, entries: Sequence[Entry]) -> RefusedError:
    trouble = dirty_trouble(version, entries)
    return RefusedError(trouble.what, hint=trouble.way_out)


def _applied(version: str, name: str) -> Applied:
    return Applied(version, name, None, None, None)  # records no time


GOLANG_MIGRATE = GolangMigrateHistory()
