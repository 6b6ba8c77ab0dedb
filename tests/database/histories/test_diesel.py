"""diesel's ``__diesel_schema_migrations``, as diesel 2.x writes it: one row per applied
migration directory, keyed by the directory's version as diesel derives it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.database.histories import adapter
from backout.database.history import Applied
from backout.migrations.entry import Entry
from tests.database.histories.tool_tables import (
    DIESEL,
    catalog,
    every_tool_table,
    make,
    rows,
    shape,
)

DIESEL_HISTORY = adapter("diesel")
TABLE = "__diesel_schema_migrations"
DIRECTORIES = [
    "00000000000000_diesel_initial_setup",
    "2024-01-15-093000_create_users",
    "2024-02-01-120000_add_email",
]


@pytest.fixture
def entries(tmp_path: Path) -> list[Entry]:
    files = {f"{d}/{f}": "SELECT 1;\n" for d in DIRECTORIES for f in ("up.sql", "down.sql")}
    return catalog(tmp_path, "directory", files)


@pytest.fixture
def table(conn: psycopg.Connection[Any]) -> None:
    """diesel's table after ``diesel migration run`` of the first two directories."""
    make(conn, DIESEL, TABLE)
    for version in ("00000000000000", "20240115093000"):
        conn.execute("INSERT INTO __diesel_schema_migrations (version) VALUES (%s)", (version,))


def test_the_applied_versions_are_read_by_the_folder_s_directory_names(
    conn: psycopg.Connection[Any], entries: list[Entry], table: None
) -> None:
    recorded = DIESEL_HISTORY.read(conn, TABLE, entries)

    assert sorted(recorded.applied) == ["00000000000000", "20240115093000"]
    users = recorded.applied["20240115093000"]
    assert users.name == "2024-01-15-093000_create_users"
    assert users.applied_at is not None
    assert users.applied_at.tzinfo is not None
    assert recorded.troubles == ()


def test_a_version_no_directory_matches_is_read_by_diesel_s_version(
    conn: psycopg.Connection[Any], entries: list[Entry], table: None
) -> None:
    conn.execute("INSERT INTO __diesel_schema_migrations (version) VALUES ('20231231000000')")

    assert DIESEL_HISTORY.read(conn, TABLE, entries).applied["20231231000000"].name == (
        "20231231000000"
    )


def test_applying_inserts_the_version_as_diesel_does(
    conn: psycopg.Connection[Any], entries: list[Entry], table: None
) -> None:
    applied = Applied("20240201120000", entries[2].name, None, None, None)

    DIESEL_HISTORY.record_applied(conn, TABLE, entries[2], entries, applied)

    assert rows(
        conn, "SELECT version, run_on IS NOT NULL FROM __diesel_schema_migrations ORDER BY 1"
    ) == [("00000000000000", True), ("20240115093000", True), ("20240201120000", True)]


def test_rolling_back_deletes_the_version_as_diesel_revert_does(
    conn: psycopg.Connection[Any], entries: list[Entry], table: None
) -> None:
    DIESEL_HISTORY.record_rolled_back(conn, TABLE, entries[1], entries)

    assert rows(conn, "SELECT version FROM __diesel_schema_migrations") == [("00000000000000",)]


def test_create_makes_diesel_s_table(conn: psycopg.Connection[Any]) -> None:
    make(conn, DIESEL, "made_by_diesel")

    DIESEL_HISTORY.create(conn, TABLE)

    assert shape(conn, TABLE) == shape(conn, "made_by_diesel")


def test_diesel_s_table_is_recognised_and_no_other_tool_s(conn: psycopg.Connection[Any]) -> None:
    tables = every_tool_table(conn)

    assert {tool for tool, columns in tables.items() if DIESEL_HISTORY.recognises(columns)} == {
        "diesel"
    }
