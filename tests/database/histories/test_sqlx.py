"""sqlx's ``_sqlx_migrations``, as launchbadge/sqlx 0.8 writes it: one row per applied migration
with sqlx's description and SHA-384 checksum; a failed row explained and never removed."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.database.histories import adapter
from backout.database.history import Applied
from backout.errors import RefusedError
from backout.migrations.entry import Entry
from tests.database.histories.tool_tables import (
    SQLX,
    catalog,
    every_tool_table,
    make,
    rows,
    shape,
)

SQLX_HISTORY = adapter("sqlx")
TABLE = "_sqlx_migrations"
UP = {
    "20240101120000_create_users": "CREATE TABLE users (id bigint);\n",
    "20240102120000_add_user_email": "ALTER TABLE users ADD COLUMN email text;\n",
}


@pytest.fixture
def entries(tmp_path: Path) -> list[Entry]:
    files = {f"{name}.up.sql": sql for name, sql in UP.items()}
    files |= {f"{name}.down.sql": "SELECT 1;\n" for name in UP}
    return catalog(tmp_path, "golang-migrate", files)


def sqlx_up(conn: psycopg.Connection[Any], version: int, description: str, sql: str) -> None:
    """What ``sqlx migrate run`` writes for one migration: the row, then its elapsed time."""
    conn.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)"
        " VALUES (%s, %s, TRUE, %s, -1)",
        (version, description, hashlib.sha384(sql.encode()).digest()),
    )
    conn.execute(
        "UPDATE _sqlx_migrations SET execution_time = 4200000 WHERE version = %s", (version,)
    )


@pytest.fixture
def table(conn: psycopg.Connection[Any]) -> None:
    make(conn, SQLX, TABLE)
    sqlx_up(conn, 20240101120000, "create users", UP["20240101120000_create_users"])


def test_the_applied_migrations_are_read_by_the_folder_s_names(
    conn: psycopg.Connection[Any], entries: list[Entry], table: None
) -> None:
    recorded = SQLX_HISTORY.read(conn, TABLE, entries)

    (applied,) = recorded.applied.values()
    assert (applied.version, applied.name) == ("20240101120000", "20240101120000_create_users")
    assert applied.applied_at is not None
    assert applied.applied_at.tzinfo is not None
    assert (applied.execution_ms, applied.checksum) == (4, None)
    assert recorded.troubles == ()


def test_a_row_no_file_matches_is_read_by_its_version_and_description(
    conn: psycopg.Connection[Any], entries: list[Entry], table: None
) -> None:
    sqlx_up(conn, 20230101000000, "old thing", "SELECT 1;")

    missing = SQLX_HISTORY.read(conn, TABLE, entries).applied["20230101000000"]

    assert missing.name == "old thing"


def test_a_failed_row_is_explained_with_sqlx_s_own_words(
    conn: psycopg.Connection[Any], entries: list[Entry], table: None
) -> None:
    conn.execute("UPDATE _sqlx_migrations SET success = false")

    (trouble,) = SQLX_HISTORY.read(conn, TABLE, entries).troubles

    assert trouble.migration == "20240101120000_create_users"
    assert "migration 20240101120000 is partially applied" in trouble.what
    assert "DELETE FROM _sqlx_migrations WHERE version = 20240101120000" in trouble.way_out


def test_applying_writes_the_row_sqlx_writes(
    conn: psycopg.Connection[Any], entries: list[Entry], table: None
) -> None:
    applied = Applied("20240102120000", entries[1].name, None, "me", "x", execution_ms=7)

    SQLX_HISTORY.record_applied(conn, TABLE, entries[1], entries, applied)

    expected = hashlib.sha384(UP["20240102120000_add_user_email"].encode()).digest()
    assert rows(
        conn,
        "SELECT version, description, success, checksum, execution_time, installed_on IS NOT NULL"
        " FROM _sqlx_migrations WHERE version = 20240102120000",
    ) == [(20240102120000, "add user email", True, expected, 7_000_000, True)]


def test_rolling_back_deletes_the_row_as_sqlx_revert_does(
    conn: psycopg.Connection[Any], entries: list[Entry], table: None
) -> None:
    sqlx_up(conn, 20240102120000, "add user email", UP["20240102120000_add_user_email"])

    SQLX_HISTORY.record_rolled_back(conn, TABLE, entries[1], entries)

    assert rows(conn, "SELECT version FROM _sqlx_migrations") == [(20240101120000,)]


def test_a_failed_row_is_never_removed_by_a_rollback(
    conn: psycopg.Connection[Any], entries: list[Entry], table: None
) -> None:
    conn.execute("UPDATE _sqlx_migrations SET success = false")

    with pytest.raises(RefusedError, match="partially applied"):
        SQLX_HISTORY.record_rolled_back(conn, TABLE, entries[0], entries)

    assert rows(conn, "SELECT version, success FROM _sqlx_migrations") == [(20240101120000, False)]


def test_create_makes_sqlx_s_table(conn: psycopg.Connection[Any]) -> None:
    make(conn, SQLX, "made_by_sqlx")

    SQLX_HISTORY.create(conn, TABLE)

    assert shape(conn, TABLE) == shape(conn, "made_by_sqlx")


def test_sqlx_s_table_is_recognised_and_no_other_tool_s(conn: psycopg.Connection[Any]) -> None:
    tables = every_tool_table(conn)

    assert {tool for tool, columns in tables.items() if SQLX_HISTORY.recognises(columns)} == {
        "sqlx"
    }
