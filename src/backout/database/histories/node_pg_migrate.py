"""node-pg-migrate's history table: ``public.pgmigrations``, one row per migration run.

The source of truth is salsita/node-pg-migrate (read at 9.0.0, the version the round-trip tests
run): ``src/runner.ts`` and ``src/migration.ts``.

- ``ensureMigrationsTable``: ``CREATE TABLE "<schema>"."pgmigrations" (id SERIAL PRIMARY KEY,
  name varchar(255) NOT NULL, run_on timestamp NOT NULL)``; the schema is
  ``--migrations-schema``, else the first ``--schema``, else ``public``;
- ``Migration._getMarkAsRun``: ``up`` inserts ``(name, run_on) VALUES ('<name>', NOW())``,
  ``down`` runs ``DELETE ... WHERE name='<name>'``, in the transaction of the migration's SQL.
  The name is the file name without its extension (``1700000000000_create-users``);
- ``getRunMigrations`` reads the names ``ORDER BY run_on, id``, and ``checkOrder`` refuses to
  run (``up`` and ``down`` alike) when the i-th name run is not the i-th file: a migration
  rolled back while a later one stays applied, or a recorded name with no file.

node-pg-migrate has no dirty or failed state (a failing migration rolls back with its row);
the order check is the one trouble: backout names it with the way out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from backout.database.histories.base import Recorded, Trouble, delete_where
from backout.database.history import Applied, table_ident
from backout.migrations.entry import Entry

COLUMNS = {"id", "name", "run_on"}


class NodePgMigrateHistory:
    tool = "node-pg-migrate"
    default_table = "public.pgmigrations"

    def recognises(self, columns: Mapping[str, str]) -> bool:
        return set(columns) == COLUMNS and columns["run_on"].startswith("timestamp")

    def create(self, conn: psycopg.Connection[Any], table: str) -> None:
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (id SERIAL PRIMARY KEY,"
                " name varchar(255) NOT NULL, run_on timestamp NOT NULL)"
            ).format(table_ident(table))
        )

    def read(self, conn: psycopg.Connection[Any], table: str, entries: Sequence[Entry]) -> Recorded:
        """Each row matched to the file of that name; a row no file has is kept under its name
        (``status`` shows it as missing). ``run_on`` holds no time zone: it is read in this
        session's, which is the server's default, as node-pg-migrate's ``NOW()`` wrote it."""
        rows = conn.execute(
            sql.SQL("SELECT name, run_on::timestamptz FROM {} ORDER BY run_on, id").format(
                table_ident(table)
            )
        ).fetchall()
        files = {e.name: e for e in entries}
        applied: dict[str, Applied] = {}
        for name, run_on in rows:
            entry = files.get(name)
            key = (entry.version or entry.name) if entry else name
            applied[key] = Applied(key, name, run_on, None, None)
        return Recorded(applied, _out_of_order([name for name, _ in rows], entries))

    def record_applied(
        self,
        conn: psycopg.Connection[Any],
        table: str,
        entry: Entry,
        entries: Sequence[Entry],
        applied: Applied,
    ) -> None:
        """As node-pg-migrate's ``up``: the name, run ``NOW()`` (the transaction's start)."""
        conn.execute(
            sql.SQL("INSERT INTO {} (name, run_on) VALUES (%s, NOW())").format(table_ident(table)),
            (entry.name,),
        )

    def record_rolled_back(
        self, conn: psycopg.Connection[Any], table: str, entry: Entry, entries: Sequence[Entry]
    ) -> None:
        """As node-pg-migrate's ``down``: the rows of that name deleted."""
        delete_where(conn, table, "name", entry.name)


def _out_of_order(run: Sequence[str], entries: Sequence[Entry]) -> tuple[Trouble, ...]:
    """What node-pg-migrate's ``checkOrder`` would refuse: the first place where the names run
    (in the order run) and the files (in order) differ."""
    files = {e.name for e in entries}
    for recorded, entry in zip(run, entries, strict=False):
        if recorded == entry.name:
            continue
        if recorded not in files:
            return (_no_file(recorded),)
        if entry.name not in run:
            return (_pending_before(entry.name, recorded),)
        return (_run_out_of_order(entry.name, recorded),)
    return ()


_REFUSES = "its own up and down refuse to run (its order check)"


def _pending_before(pending: str, later: str) -> Trouble:
    return Trouble(
        pending,
        f"node-pg-migrate records {later} as run but not {pending}, which comes before it:"
        f" {_REFUSES}",
        f"roll {later} back too, then `node-pg-migrate up` applies both in order; or"
        f" `node-pg-migrate up --no-check-order` re-applies {pending} alone, and node-pg-migrate"
        " needs `--no-check-order` from then on",
    )


def _run_out_of_order(first: str, recorded: str) -> Trouble:
    return Trouble(
        first,
        f"node-pg-migrate records {recorded} as run before {first}, against the files' order:"
        f" {_REFUSES}",
        f"run node-pg-migrate with `--no-check-order`; or roll back {first} and the migrations"
        " after it, then `node-pg-migrate up` runs them in order",
    )


def _no_file(recorded: str) -> Trouble:
    return Trouble(
        recorded,
        f"node-pg-migrate records {recorded} as run but the folder has no file of that name:"
        f" {_REFUSES}",
        f"restore {recorded}'s file from version control; do not delete the row while the"
        " migration's objects are in the database",
    )


NODE_PG_MIGRATE = NodePgMigrateHistory()
