"""goose's ``goose_db_version``, as pressly/goose v3 writes it: read, troubles, and the rows
backout leaves after an apply and a rollback (those goose's own up and down leave)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.database.histories import adapter
from backout.database.histories.base import Trouble
from backout.database.history import Applied
from backout.migrations.entry import Entry
from tests.database.histories.tool_tables import (
    GOOSE,
    GOOSE_BEFORE_3_22,
    catalog,
    every_tool_table,
    make,
    rows,
    shape,
)

GOOSE_HISTORY = adapter("goose")
TABLE = "goose_db_version"
UP = "-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 1;\n"


@pytest.fixture
def entries(tmp_path: Path) -> list[Entry]:
    names = ["00001_create_users.sql", "00002_add_email.sql", "00003_index_email.sql"]
    return catalog(tmp_path, "goose", dict.fromkeys(names, UP))


def goose_table(conn: psycopg.Connection[Any], *versions: int, ddl: str = GOOSE) -> None:
    """The table as goose creates it (with its version 0 row), then one ``up`` per version."""
    make(conn, ddl, TABLE)
    for version in (0, *versions):
        conn.execute(
            "INSERT INTO goose_db_version (version_id, is_applied) VALUES (%s, true)", (version,)
        )


def test_the_applied_versions_are_read_by_the_folder_s_names(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    goose_table(conn, 1, 2)

    recorded = GOOSE_HISTORY.read(conn, TABLE, entries)

    assert sorted(recorded.applied) == ["00001", "00002"]
    first = recorded.applied["00001"]
    assert (first.version, first.name, first.checksum) == ("00001", "00001_create_users", None)
    assert first.applied_at is not None
    assert first.applied_at.tzinfo is not None
    assert recorded.troubles == ()


def test_a_version_whose_newest_row_says_not_applied_is_not_applied(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    """goose before v3 recorded a down as an ``is_applied = false`` row."""
    goose_table(conn, 1, 2, ddl=GOOSE_BEFORE_3_22)
    conn.execute("INSERT INTO goose_db_version (version_id, is_applied) VALUES (2, false)")

    assert sorted(GOOSE_HISTORY.read(conn, TABLE, entries).applied) == ["00001"]


def test_a_version_no_file_matches_is_read_by_goose_s_number(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    goose_table(conn, 1, 2, 3, 7)

    missing = GOOSE_HISTORY.read(conn, TABLE, entries).applied["7"]

    assert (missing.version, missing.name) == ("7", "7")


def test_a_version_below_the_newest_that_is_not_applied_is_goose_s_missing_state(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    goose_table(conn, 1, 3)

    recorded = GOOSE_HISTORY.read(conn, TABLE, entries)

    assert sorted(recorded.applied) == ["00001", "00003"]
    (trouble,) = recorded.troubles
    assert isinstance(trouble, Trouble)
    assert trouble.migration == "00002_add_email"
    assert "found missing migrations before current version 3" in trouble.what
    assert "goose up -allow-missing" in trouble.way_out


def test_rolling_back_deletes_the_version_s_rows_as_goose_down_does(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    goose_table(conn, 1, 2)

    GOOSE_HISTORY.record_rolled_back(conn, TABLE, entries[1], entries)

    assert rows(conn, "SELECT version_id, is_applied FROM goose_db_version ORDER BY id") == [
        (0, True),
        (1, True),
    ]
    assert sorted(GOOSE_HISTORY.read(conn, TABLE, entries).applied) == ["00001"]


def test_rolling_back_on_a_table_with_old_down_rows_deletes_them_all(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    goose_table(conn, 1, 2, ddl=GOOSE_BEFORE_3_22)
    conn.execute("INSERT INTO goose_db_version (version_id, is_applied) VALUES (2, false)")
    conn.execute("INSERT INTO goose_db_version (version_id, is_applied) VALUES (2, true)")

    GOOSE_HISTORY.record_rolled_back(conn, TABLE, entries[1], entries)

    assert rows(conn, "SELECT version_id FROM goose_db_version ORDER BY id") == [(0,), (1,)]


def test_applying_inserts_the_row_goose_up_inserts(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    goose_table(conn, 1, 2)
    applied = Applied("00003", "00003_index_email", None, "me", "abc")

    GOOSE_HISTORY.record_applied(conn, TABLE, entries[2], entries, applied)

    assert rows(
        conn,
        "SELECT version_id, is_applied, tstamp IS NOT NULL FROM goose_db_version ORDER BY id",
    ) == [(0, True, True), (1, True, True), (2, True, True), (3, True, True)]


def test_create_makes_goose_s_table_with_its_version_0_row(conn: psycopg.Connection[Any]) -> None:
    make(conn, GOOSE, "made_by_goose")

    GOOSE_HISTORY.create(conn, TABLE)

    assert shape(conn, TABLE) == shape(conn, "made_by_goose")
    assert rows(conn, "SELECT version_id, is_applied FROM goose_db_version") == [(0, True)]


def test_goose_s_tables_are_recognised_and_no_other_tool_s(
    conn: psycopg.Connection[Any],
) -> None:
    tables = every_tool_table(conn)

    assert {tool for tool, columns in tables.items() if GOOSE_HISTORY.recognises(columns)} == {
        "goose",
        "goose before 3.22",
    }
