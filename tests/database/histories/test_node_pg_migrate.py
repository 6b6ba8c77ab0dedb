"""node-pg-migrate's ``pgmigrations``: read, written and recognised as node-pg-migrate does, its
order check explained, and round trips with the real node-pg-migrate.

The table is made with node-pg-migrate's own DDL (``src/runner.ts``, ``ensureMigrationsTable``);
rows are written as its ``Migration._getMarkAsRun`` does (``src/migration.ts``): ``INSERT INTO
"public"."pgmigrations" (name, run_on) VALUES ('<name>', NOW())``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.database.histories import adapter
from backout.database.histories.base import columns_of
from backout.database.history import Applied, ensure_history
from backout.migrations.catalog import discover
from backout.migrations.entry import Entry
from tests.database.histories.npm_tools import Tool, node_pg_migrate, npm_tools  # noqa: F401
from tests.database.histories.shapes import has_column, shape

NPM = adapter("node-pg-migrate")
TABLE = "public.pgmigrations"
NPM_DDL = (
    'CREATE TABLE "{schema}"."pgmigrations" (id SERIAL PRIMARY KEY,'
    " name varchar(255) NOT NULL, run_on timestamp NOT NULL)"
)
USERS = "1700000000000_create-users"
EMAIL = "1700000000001_add-email"
NICK = "1700000000002_add-nick"
FILES = {
    USERS: "-- Up Migration\nCREATE TABLE users (id bigint PRIMARY KEY);\n\n"
    "-- Down Migration\nDROP TABLE users;\n",
    EMAIL: "-- Up Migration\nALTER TABLE users ADD COLUMN email text;\n\n"
    "-- Down Migration\nALTER TABLE users DROP COLUMN email;\n",
    NICK: "-- Up Migration\nALTER TABLE users ADD COLUMN nick text;\n\n"
    "-- Down Migration\nALTER TABLE users DROP COLUMN nick;\n",
}


def folder_of(root: Path, names: list[str]) -> list[Entry]:
    folder = root / "migrations"
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / f"{name}.sql").write_text(FILES[name])
    return list(discover(root, [folder], formats={folder: "node-pg-migrate"}).entries)


def run_as_node_pg_migrate(conn: psycopg.Connection[Any], *names: str) -> None:
    for name in names:
        conn.execute(
            'INSERT INTO "public"."pgmigrations" (name, run_on) VALUES (%s, NOW())', (name,)
        )


def names(conn: psycopg.Connection[Any]) -> list[str]:
    return [n for (n,) in conn.execute("SELECT name FROM pgmigrations ORDER BY run_on, id")]


def test_node_pg_migrate_recognises_its_table(conn: psycopg.Connection[Any]) -> None:
    conn.execute(NPM_DDL.format(schema="public"))

    assert NPM.recognises(columns_of(conn, TABLE))


def test_node_pg_migrate_never_takes_backouts_or_dbmates_or_golang_migrates_table(
    conn: psycopg.Connection[Any],
) -> None:
    ensure_history(conn, "backout_history")
    conn.execute("CREATE TABLE dbmate (version varchar PRIMARY KEY)")
    conn.execute("CREATE TABLE golang (version bigint PRIMARY KEY, dirty boolean NOT NULL)")

    for table in ("backout_history", "dbmate", "golang"):
        assert not NPM.recognises(columns_of(conn, table)), table


def test_create_makes_the_table_node_pg_migrate_makes(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE SCHEMA theirs")
    conn.execute(NPM_DDL.format(schema="theirs"))

    NPM.create(conn, NPM.default_table)

    assert shape(conn, TABLE) == [
        ("id", "integer", True, True),
        ("name", "character varying(255)", True, False),
        ("run_on", "timestamp without time zone", True, False),
        ("p", "PRIMARY KEY (id)"),
    ]
    assert shape(conn, TABLE) == shape(conn, "theirs.pgmigrations")


def test_read_keys_rows_by_the_files_versions_with_the_time_run(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    entries = folder_of(tmp_path, [USERS, EMAIL])
    conn.execute(NPM_DDL.format(schema="public"))
    run_as_node_pg_migrate(conn, USERS, EMAIL, "1800000000000_no-file")

    recorded = NPM.read(conn, TABLE, entries)

    assert {v: a.name for v, a in recorded.applied.items()} == {
        "1700000000000": USERS,
        "1700000000001": EMAIL,
        "1800000000000_no-file": "1800000000000_no-file",
    }
    run_on = recorded.applied["1700000000000"].applied_at
    assert run_on is not None
    assert abs(run_on - datetime.now(UTC)) < timedelta(minutes=1)
    # node-pg-migrate compares the first min(run, files) names only: a later extra row is fine.
    assert recorded.troubles == ()


def test_a_migration_rolled_back_before_a_later_one_is_the_order_checks_trouble(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    entries = folder_of(tmp_path, [USERS, EMAIL, NICK])
    conn.execute(NPM_DDL.format(schema="public"))
    run_as_node_pg_migrate(conn, USERS, NICK)

    (trouble,) = NPM.read(conn, TABLE, entries).troubles

    assert trouble.migration == EMAIL
    assert f"records {NICK} as run but not {EMAIL}" in trouble.what
    assert f"roll {NICK} back too" in trouble.way_out
    assert "node-pg-migrate up --no-check-order" in trouble.way_out


def test_a_run_migration_whose_file_is_gone_is_a_trouble(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    entries = folder_of(tmp_path, [EMAIL])
    conn.execute(NPM_DDL.format(schema="public"))
    run_as_node_pg_migrate(conn, USERS, EMAIL)

    (trouble,) = NPM.read(conn, TABLE, entries).troubles

    assert trouble.migration == USERS
    assert "no file of that name" in trouble.what
    assert "restore" in trouble.way_out


def test_rollback_deletes_the_row_and_apply_inserts_it_as_node_pg_migrate_does(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    entries = folder_of(tmp_path, [USERS, EMAIL])
    conn.execute(NPM_DDL.format(schema="public"))
    run_as_node_pg_migrate(conn, USERS, EMAIL)

    NPM.record_rolled_back(conn, TABLE, entries[1], entries)
    assert names(conn) == [USERS]

    with conn.transaction():
        NPM.record_applied(conn, TABLE, entries[1], entries, applied(entries[1]))
        run_now = conn.execute("SELECT run_on = now()::timestamp FROM pgmigrations WHERE id = 3")
        assert run_now.fetchone() == (True,)  # NOW(): the transaction's start, as the tool's
    assert names(conn) == [USERS, EMAIL]


def applied(entry: Entry) -> Applied:
    return Applied(entry.version or "", entry.name, datetime.now(UTC), "tester", None)


def rolled_back_as_backout_does(url: str, entry: Entry, entries: list[Entry]) -> None:
    """In one transaction, the down section (as backout reads it) and node-pg-migrate's table."""
    with psycopg.connect(url) as conn, conn.transaction():
        for statement in entry.read().rollback.statements:
            conn.execute(statement.sql)
        NPM.record_rolled_back(conn, TABLE, entry, entries)


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, list[Entry]]:
    return tmp_path, folder_of(tmp_path, [USERS, EMAIL])


def test_node_pg_migrate_sees_what_backout_rolled_back_as_pending_and_reapplies_it(
    node_pg_migrate: Tool,  # noqa: F811
    database_url: str,
    conn: psycopg.Connection[Any],
    project: tuple[Path, list[Entry]],
) -> None:
    root, entries = project
    node_pg_migrate("up", cwd=root)
    assert NPM.recognises(columns_of(conn, TABLE))
    assert set(NPM.read(conn, TABLE, entries).applied) == {"1700000000000", "1700000000001"}

    rolled_back_as_backout_does(database_url, entries[1], entries)

    assert names(conn) == [USERS]
    assert not has_column(conn, "users", "email")
    dry = node_pg_migrate("up", "--dry-run", cwd=root)
    assert f"> Migrating files:\n> - {EMAIL}\n" in dry.stdout
    assert names(conn) == [USERS]

    node_pg_migrate("up", cwd=root)

    assert names(conn) == [USERS, EMAIL]
    assert has_column(conn, "users", "email")


def test_node_pg_migrates_down_undoes_what_backout_applied(
    node_pg_migrate: Tool,  # noqa: F811
    database_url: str,
    conn: psycopg.Connection[Any],
    project: tuple[Path, list[Entry]],
) -> None:
    root, entries = project
    node_pg_migrate("up", cwd=root)
    rolled_back_as_backout_does(database_url, entries[1], entries)

    with psycopg.connect(database_url) as applying, applying.transaction():
        for statement in entries[1].read().statements:
            applying.execute(statement.sql)
        NPM.record_applied(applying, TABLE, entries[1], entries, applied(entries[1]))
    assert "No migrations to run!" in node_pg_migrate("up", "--dry-run", cwd=root).stdout

    node_pg_migrate("down", cwd=root)

    assert names(conn) == [USERS]
    assert not has_column(conn, "users", "email")


def test_the_order_trouble_is_what_node_pg_migrate_refuses_and_its_way_out_works(
    node_pg_migrate: Tool,  # noqa: F811
    database_url: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
) -> None:
    entries = folder_of(tmp_path, [USERS, EMAIL, NICK])
    node_pg_migrate("up", cwd=tmp_path)
    rolled_back_as_backout_does(database_url, entries[1], entries)
    (trouble,) = NPM.read(conn, TABLE, entries).troubles

    refused = node_pg_migrate("up", cwd=tmp_path, check=False)
    assert refused.returncode != 0
    assert f"Not run migration {EMAIL} is preceding already run migration {NICK}" in (
        refused.stdout + refused.stderr
    )
    assert trouble.migration == EMAIL

    node_pg_migrate("up", "--no-check-order", cwd=tmp_path)

    assert names(conn) == [USERS, NICK, EMAIL]
    assert has_column(conn, "users", "email")
    (after,) = NPM.read(conn, TABLE, entries).troubles
    assert after.migration == EMAIL
    assert f"records {NICK} as run before {EMAIL}" in after.what
    assert "--no-check-order" in after.way_out
    assert node_pg_migrate("up", cwd=tmp_path, check=False).returncode != 0


def test_rolling_back_the_later_one_too_is_the_other_way_out(
    node_pg_migrate: Tool,  # noqa: F811
    database_url: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
) -> None:
    entries = folder_of(tmp_path, [USERS, EMAIL, NICK])
    node_pg_migrate("up", cwd=tmp_path)
    rolled_back_as_backout_does(database_url, entries[1], entries)

    rolled_back_as_backout_does(database_url, entries[2], entries)

    assert NPM.read(conn, TABLE, entries).troubles == ()
    node_pg_migrate("up", cwd=tmp_path)
    assert names(conn) == [USERS, EMAIL, NICK]
    assert NPM.read(conn, TABLE, entries).troubles == ()
