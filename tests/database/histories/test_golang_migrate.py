"""golang-migrate's ``schema_migrations (version, dirty)``, as golang-migrate/migrate v4 writes
it: one row, the newest applied version; a dirty flag explained and never cleared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.database.histories import adapter
from backout.database.history import Applied
from backout.errors import RefusedError
from backout.migrations.entry import Entry
from tests.database.histories.tool_tables import (
    GOLANG_MIGRATE,
    catalog,
    every_tool_table,
    make,
    rows,
    shape,
)

MIGRATE = adapter("golang-migrate")
TABLE = "schema_migrations"
NAMES = ["000001_create_users", "000002_add_email", "000003_index_email"]


@pytest.fixture
def entries(tmp_path: Path) -> list[Entry]:
    files = {f"{n}.{d}.sql": "SELECT 1;\n" for n in NAMES for d in ("up", "down")}
    return catalog(tmp_path, "golang-migrate", files)


def migrate_table(conn: psycopg.Connection[Any], version: int | None, dirty: bool = False) -> None:
    """The table as golang-migrate creates it, holding what its last ``SetVersion`` left."""
    make(conn, GOLANG_MIGRATE, TABLE)
    if version is not None:
        conn.execute(
            "INSERT INTO schema_migrations (version, dirty) VALUES (%s, %s)", (version, dirty)
        )


def table_rows(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return rows(conn, "SELECT version, dirty FROM schema_migrations")


def test_every_migration_up_to_the_recorded_version_is_applied(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    migrate_table(conn, 2)

    recorded = MIGRATE.read(conn, TABLE, entries)

    assert sorted(recorded.applied) == ["000001", "000002"]
    assert recorded.applied["000002"].name == "000002_add_email"
    assert recorded.applied["000002"].applied_at is None
    assert recorded.troubles == ()


def test_an_empty_table_has_nothing_applied(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    migrate_table(conn, None)

    assert MIGRATE.read(conn, TABLE, entries).applied == {}


def test_a_recorded_version_no_file_matches_is_read_by_its_number(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    migrate_table(conn, 7)

    applied = MIGRATE.read(conn, TABLE, entries).applied

    assert sorted(applied) == ["000001", "000002", "000003", "7"]
    assert applied["7"].name == "7"


def test_a_dirty_version_is_explained_with_the_way_out_golang_migrate_documents(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    migrate_table(conn, 2, dirty=True)

    (trouble,) = MIGRATE.read(conn, TABLE, entries).troubles

    assert trouble.migration == "000002_add_email"
    assert "version 2 is dirty" in trouble.what
    assert "failed part-way" in trouble.what
    assert "`migrate force 2`" in trouble.way_out
    assert "`migrate force 1`" in trouble.way_out
    assert "backout does not clear the flag" in trouble.way_out


def test_dirty_at_no_version_is_a_failed_down_of_the_first_migration(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    migrate_table(conn, -1, dirty=True)

    recorded = MIGRATE.read(conn, TABLE, entries)

    assert recorded.applied == {}
    (trouble,) = recorded.troubles
    assert trouble.migration is None
    assert "`migrate force -1`" in trouble.way_out
    assert "`migrate force 1`" in trouble.way_out


def test_rolling_back_the_newest_sets_the_previous_version_as_migrate_down_does(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    migrate_table(conn, 3)

    MIGRATE.record_rolled_back(conn, TABLE, entries[2], entries)

    assert table_rows(conn) == [(2, False)]


def test_rolling_back_the_first_empties_the_table(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    migrate_table(conn, 1)

    MIGRATE.record_rolled_back(conn, TABLE, entries[0], entries)

    assert table_rows(conn) == []
    assert MIGRATE.read(conn, TABLE, entries).applied == {}


def test_rolling_back_one_below_the_newest_is_refused(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    migrate_table(conn, 3)

    with pytest.raises(RefusedError, match="roll back the later migrations first"):
        MIGRATE.record_rolled_back(conn, TABLE, entries[1], entries)

    assert table_rows(conn) == [(3, False)]


def test_a_dirty_table_is_never_cleared_by_a_rollback(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    migrate_table(conn, 2, dirty=True)

    with pytest.raises(RefusedError, match="dirty") as refused:
        MIGRATE.record_rolled_back(conn, TABLE, entries[1], entries)

    assert "migrate force" in str(refused.value)
    assert table_rows(conn) == [(2, True)]


def test_applying_the_next_sets_its_version_as_migrate_up_does(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    migrate_table(conn, None)
    now = Applied("000001", "000001_create_users", None, None, None)

    MIGRATE.record_applied(conn, TABLE, entries[0], entries, now)
    MIGRATE.record_applied(conn, TABLE, entries[1], entries, now)

    assert table_rows(conn) == [(2, False)]


def test_applying_past_a_pending_migration_or_on_a_dirty_table_is_refused(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    migrate_table(conn, 1)
    now = Applied("000003", "000003_index_email", None, None, None)

    with pytest.raises(RefusedError, match="000002_add_email"):
        MIGRATE.record_applied(conn, TABLE, entries[2], entries, now)
    conn.execute("UPDATE schema_migrations SET dirty = true")
    with pytest.raises(RefusedError, match="dirty"):
        MIGRATE.record_applied(conn, TABLE, entries[1], entries, now)

    assert table_rows(conn) == [(1, True)]


def test_applying_one_at_or_below_the_recorded_version_is_refused(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    migrate_table(conn, 2)
    now = Applied("000001", "000001_create_users", None, None, None)

    with pytest.raises(RefusedError, match="already records version 2"):
        MIGRATE.record_applied(conn, TABLE, entries[0], entries, now)

    assert table_rows(conn) == [(2, False)]


def test_create_makes_golang_migrate_s_table(conn: psycopg.Connection[Any]) -> None:
    make(conn, GOLANG_MIGRATE, "made_by_migrate")

    MIGRATE.create(conn, TABLE)

    assert shape(conn, TABLE) == shape(conn, "made_by_migrate")
    assert table_rows(conn) == []


def test_golang_migrate_s_table_is_recognised_and_no_other_tool_s(
    conn: psycopg.Connection[Any],
) -> None:
    tables = every_tool_table(conn)

    assert {tool for tool, columns in tables.items() if MIGRATE.recognises(columns)} == {
        "golang-migrate"
    }
