"""dbmate's ``schema_migrations``: read, written and recognised as dbmate does, and a round trip
with the real dbmate (its ``up``, backout's rollback, its ``status`` and ``up`` again).

The tables are made with dbmate's own DDL: ``pkg/driver/postgres/postgres.go``
(``CreateMigrationsTable``: ``(version varchar primary key)`` at v2.36.0, ``varchar(255)``
before); rows are written with its ``InsertMigration`` (``insert into ... (version) values
($1)``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.database.histories import adapter
from backout.database.histories.base import columns_of
from backout.database.history import Applied, ensure_history
from backout.migrations.catalog import discover
from backout.migrations.entry import Entry
from tests.database.histories.npm_tools import Tool, dbmate, npm_tools  # noqa: F401  (fixtures)
from tests.database.histories.shapes import has_column, shape

DBMATE = adapter("dbmate")
TABLE = "schema_migrations"
DBMATE_DDL = "create table if not exists public.schema_migrations (version varchar primary key)"
USERS = """\
-- migrate:up
CREATE TABLE users (id bigint PRIMARY KEY);

-- migrate:down
DROP TABLE users;
"""
EMAIL = """\
-- migrate:up
ALTER TABLE users ADD COLUMN email text;

-- migrate:down
ALTER TABLE users DROP COLUMN email;
"""


def folder_of(tmp_path: Path, files: dict[str, str]) -> list[Entry]:
    folder = tmp_path / "db" / "migrations"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return list(discover(tmp_path, [folder], formats={folder: "dbmate"}).entries)


def versions(conn: psycopg.Connection[Any]) -> list[str]:
    return [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]


def applied(entry: Entry) -> Applied:
    """The row backout would record for ``entry`` (dbmate keeps only its version)."""
    return Applied(entry.version or "", entry.name, datetime.now(UTC), "tester", None)


def test_dbmate_recognises_its_table_of_any_version_length(conn: psycopg.Connection[Any]) -> None:
    conn.execute(DBMATE_DDL)
    conn.execute("CREATE TABLE old_dbmate (version varchar(255) PRIMARY KEY)")

    assert DBMATE.recognises(columns_of(conn, TABLE))
    assert DBMATE.recognises(columns_of(conn, "old_dbmate"))


def test_dbmate_never_takes_backouts_or_golang_migrates_or_node_pg_migrates_table(
    conn: psycopg.Connection[Any],
) -> None:
    ensure_history(conn, "backout_history")
    # golang-migrate's database/postgres/postgres.go, ensureVersionTable.
    conn.execute(
        "CREATE TABLE golang (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)"
    )
    # node-pg-migrate's src/runner.ts, ensureMigrationsTable.
    conn.execute(
        "CREATE TABLE pgmigrations (id SERIAL PRIMARY KEY, name varchar(255) NOT NULL,"
        " run_on timestamp NOT NULL)"
    )
    conn.execute("CREATE TABLE text_version (version text PRIMARY KEY)")

    for table in ("backout_history", "golang", "pgmigrations", "text_version"):
        assert not DBMATE.recognises(columns_of(conn, table)), table


def test_create_makes_the_table_dbmate_makes(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE SCHEMA theirs")
    conn.execute(DBMATE_DDL.replace("public.", "theirs."))

    DBMATE.create(conn, TABLE)
    DBMATE.create(conn, TABLE)  # as dbmate's: if not exists

    assert shape(conn, "public.schema_migrations") == [
        ("version", "character varying", True, False),
        ("p", "PRIMARY KEY (version)"),
    ]
    assert shape(conn, "public.schema_migrations") == shape(conn, "theirs.schema_migrations")


def test_read_keys_rows_by_the_files_versions_and_keeps_a_row_without_file(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    entries = folder_of(
        tmp_path,
        {"20240101120000_create_users.sql": USERS, "20240102120000_add_email.sql": EMAIL},
    )
    conn.execute(DBMATE_DDL)
    for version in ("20240101120000", "20230101000000"):
        conn.execute("insert into public.schema_migrations (version) values (%s)", (version,))

    recorded = DBMATE.read(conn, TABLE, entries)

    assert {v: a.name for v, a in recorded.applied.items()} == {
        "20240101120000": "20240101120000_create_users",
        "20230101000000": "20230101000000",
    }
    # dbmate records no time, no user, no checksum.
    for row in recorded.applied.values():
        assert row.applied_at is None
        assert row.applied_by is None
        assert row.checksum is None
    assert recorded.troubles == ()


def test_rollback_deletes_the_row_and_apply_inserts_it_as_dbmate_does(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    users, email = folder_of(
        tmp_path,
        {"20240101120000_create_users.sql": USERS, "20240102120000_add_email.sql": EMAIL},
    )
    conn.execute(DBMATE_DDL)
    conn.execute("insert into public.schema_migrations (version) values ('20240101120000')")
    conn.execute("insert into public.schema_migrations (version) values ('20240102120000')")

    DBMATE.record_rolled_back(conn, TABLE, email, [users, email])
    assert versions(conn) == ["20240101120000"]

    DBMATE.record_applied(conn, TABLE, email, [users, email], applied(email))
    assert versions(conn) == ["20240101120000", "20240102120000"]


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, list[Entry]]:
    entries = folder_of(
        tmp_path,
        {"20240101120000_create_users.sql": USERS, "20240102120000_add_email.sql": EMAIL},
    )
    return tmp_path, entries


def rolled_back_as_backout_does(url: str, entry: Entry, entries: list[Entry]) -> None:
    """What backout's rollback does to a dbmate project: in one transaction, the migration's
    down section (as backout reads it) and dbmate's table."""
    with psycopg.connect(url) as conn, conn.transaction():
        for statement in entry.read().rollback.statements:
            conn.execute(statement.sql)
        DBMATE.record_rolled_back(conn, TABLE, entry, entries)


def test_dbmates_status_and_up_agree_after_backout_rolls_back(
    dbmate: Tool,  # noqa: F811
    database_url: str,
    conn: psycopg.Connection[Any],
    project: tuple[Path, list[Entry]],
) -> None:
    root, entries = project
    dbmate("--no-dump-schema", "up", cwd=root)
    assert DBMATE.recognises(columns_of(conn, TABLE))
    assert shape(conn, TABLE) == [
        ("version", "character varying", True, False),
        ("p", "PRIMARY KEY (version)"),
    ]
    assert set(DBMATE.read(conn, TABLE, entries).applied) == {"20240101120000", "20240102120000"}

    rolled_back_as_backout_does(database_url, entries[1], entries)

    assert versions(conn) == ["20240101120000"]
    assert not has_column(conn, "users", "email")
    status = dbmate("status", "--exit-code", cwd=root, check=False)
    assert status.returncode == 1, status.stdout
    assert "[X] 20240101120000_create_users.sql" in status.stdout
    assert "[ ] 20240102120000_add_email.sql" in status.stdout

    dbmate("--no-dump-schema", "up", cwd=root)

    assert versions(conn) == ["20240101120000", "20240102120000"]
    assert has_column(conn, "users", "email")


def test_dbmates_rollback_undoes_what_backout_applied(
    dbmate: Tool,  # noqa: F811
    database_url: str,
    conn: psycopg.Connection[Any],
    project: tuple[Path, list[Entry]],
) -> None:
    root, entries = project
    dbmate("--no-dump-schema", "up", cwd=root)
    rolled_back_as_backout_does(database_url, entries[1], entries)

    with psycopg.connect(database_url) as applying, applying.transaction():
        for statement in entries[1].read().statements:
            applying.execute(statement.sql)
        DBMATE.record_applied(applying, TABLE, entries[1], entries, applied(entries[1]))
    assert dbmate("status", "--exit-code", cwd=root, check=False).returncode == 0

    dbmate("--no-dump-schema", "rollback", cwd=root)

    assert versions(conn) == ["20240101120000"]
    assert not has_column(conn, "users", "email")
