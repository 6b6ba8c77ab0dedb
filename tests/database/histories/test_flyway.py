"""Flyway's ``flyway_schema_history``: read as ``flyway info`` reads it, a rollback written as
Flyway Teams' ``undo`` writes it (an ``UNDO_SQL`` row), an apply as ``flyway migrate`` does.

The tables are built with Flyway's own DDL (``PostgreSQLDatabase.getRawCreateScript``) and
filled with Flyway's own insert (``JdbcTableSchemaHistory.doAddAppliedMigration``)."""

from __future__ import annotations

import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.database.histories import adapter
from backout.database.histories.base import columns_of
from backout.database.histories.flyway import FLYWAY, checksum_of
from backout.database.history import Applied, ensure_history
from backout.migrations.entry import Entry
from backout.migrations.formats.flyway import FlywayFormat
from tests.helpers import write_tree

FLYWAY_DDL = """
CREATE TABLE {table} (
    "installed_rank" INT NOT NULL,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INTEGER,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INTEGER NOT NULL,
    "success" BOOLEAN NOT NULL
);
ALTER TABLE {table} ADD CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank");
CREATE INDEX "flyway_schema_history_s_idx" ON {table} ("success");
"""
"""``PostgreSQLDatabase.getRawCreateScript`` (flyway-database-postgresql), as Flyway runs it."""

FLYWAY_INSERT = (
    'INSERT INTO "public"."flyway_schema_history" ("installed_rank", "version", "description",'
    ' "type", "script", "checksum", "installed_by", "execution_time", "success")'
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
"""``Database.getInsertStatement``: ``installed_on`` keeps its default."""

FILES = {
    "V1__create_users.sql": "CREATE TABLE users (id int);\n",
    "U1__create_users.sql": "DROP TABLE users;\n",
    "V1_1__add_email.sql": "ALTER TABLE users ADD email text;\n",
    "U1_1__add_email.sql": "\ufeffALTER TABLE users\r\n  DROP email;\r\n",
    "V2__jobs.sql": "CREATE TABLE jobs (id int);\n",
    "U2__jobs.sql": "DROP TABLE jobs;\n",
}


@pytest.fixture
def entries(tmp_path: Path) -> list[Entry]:
    folder = write_tree(tmp_path / "sql", FILES)
    return sorted(FlywayFormat().entries(folder), key=lambda e: e.key)


@pytest.fixture
def history(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """Flyway's table after ``flyway migrate`` of V1 and V1.1 on a schema Flyway created."""
    conn.execute(FLYWAY_DDL.format(table='"public"."flyway_schema_history"'))
    migrate(conn, 0, None, "<< Flyway Schema Creation >>", "SCHEMA", '"public"', None)
    migrate(conn, 1, "1", "create users", "SQL", "V1__create_users.sql", 1)
    migrate(conn, 2, "1.1", "add email", "SQL", "V1_1__add_email.sql", 2)
    return conn


def migrate(
    conn: psycopg.Connection[Any],
    rank: int,
    version: str | None,
    description: str,
    kind: str,
    script: str,
    checksum: int | None,
    success: bool = True,
) -> None:
    conn.execute(
        FLYWAY_INSERT,
        (rank, version, description, kind, script, checksum, "flyway", 12, success),
    )


def signed(crc: int) -> int:
    """A CRC-32 as Java's ``(int) crc32.getValue()`` gives it."""
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def table(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT installed_rank, version, description, type, script, checksum, installed_by,"
        " execution_time, success FROM flyway_schema_history ORDER BY installed_rank"
    ).fetchall()


def catalog(conn: psycopg.Connection[Any], schema: str) -> list[Any]:
    """The table's columns (type, null, default), constraints and indexes, schema left out."""
    relation = f"{schema}.flyway_schema_history"
    columns = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull,"
        " pg_get_expr(adbin, adrelid) FROM pg_attribute LEFT JOIN pg_attrdef"
        " ON adrelid = attrelid AND adnum = attnum"
        " WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum",
        (relation,),
    ).fetchall()
    constraints = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass ORDER BY conname",
        (relation,),
    ).fetchall()
    indexes = conn.execute(
        "SELECT indexname, replace(indexdef, %s, '') FROM pg_indexes"
        " WHERE schemaname = %s ORDER BY indexname",
        (f"{schema}.", schema),
    ).fetchall()
    return [columns, constraints, indexes]


def test_create_makes_the_table_flyway_makes(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE SCHEMA flyway_made")
    conn.execute(FLYWAY_DDL.format(table='"flyway_made"."flyway_schema_history"'))

    FLYWAY.create(conn, "flyway_schema_history")

    assert catalog(conn, "public") == catalog(conn, "flyway_made")
    assert adapter("flyway") is FLYWAY


def test_recognises_flyway_tables_only(conn: psycopg.Connection[Any]) -> None:
    conn.execute(FLYWAY_DDL.format(table="flyway_schema_history"))
    ensure_history(conn, "schema_migrations")
    conn.execute("CREATE TABLE dbmate (version varchar(128) PRIMARY KEY)")
    conn.execute("CREATE TABLE golang_migrate (version bigint PRIMARY KEY, dirty boolean)")

    assert FLYWAY.recognises(columns_of(conn, "flyway_schema_history"))
    for other in ("schema_migrations", "dbmate", "golang_migrate"):
        assert not FLYWAY.recognises(columns_of(conn, other))


def test_read_keys_applied_versions_by_the_catalog_and_leaves_markers_out(
    history: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    migrate(history, 3, None, "views", "SQL", "R__views.sql", 3)
    migrate(history, 4, "3", "gone", "SQL", "V3__gone.sql", 4)

    recorded = FLYWAY.read(history, "flyway_schema_history", entries)

    assert {v: a.name for v, a in recorded.applied.items()} == {
        "1": "V1__create_users",
        "1.1": "V1_1__add_email",
        "3": "V3__gone",
    }
    first = recorded.applied["1"]
    assert first.applied_by == "flyway"
    assert first.execution_ms == 12
    assert isinstance(first.applied_at, datetime)
    assert first.applied_at.tzinfo is not None
    assert recorded.troubles == ()


def test_a_version_undone_is_not_applied_until_migrated_again(
    history: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    migrate(history, 3, "1.1", "add email", "UNDO_SQL", "U1_1__add_email.sql", 5)

    assert set(FLYWAY.read(history, "flyway_schema_history", entries).applied) == {"1"}

    migrate(history, 4, "1.1", "add email", "SQL", "V1_1__add_email.sql", 2)

    assert set(FLYWAY.read(history, "flyway_schema_history", entries).applied) == {"1", "1.1"}


def test_a_failed_row_is_a_trouble_and_stays(
    history: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    migrate(history, 3, "2", "jobs", "SQL", "V2__jobs.sql", 7, success=False)
    before = table(history)

    recorded = FLYWAY.read(history, "flyway_schema_history", entries)

    assert set(recorded.applied) == {"1", "1.1"}
    [trouble] = recorded.troubles
    assert trouble.migration == "V2__jobs"
    assert "Flyway recorded version 2 as failed" in trouble.what
    assert "`flyway repair`" in trouble.way_out
    assert table(history) == before


def test_rollback_appends_the_undo_row_flyway_undo_writes(
    history: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    email = next(e for e in entries if e.version == "1.1")
    before = table(history)

    with history.transaction():  # the rollback's own transaction
        FLYWAY.record_rolled_back(history, "flyway_schema_history", email, entries)

    user = history.execute("SELECT current_user").fetchone()
    undo = signed(zlib.crc32(b"ALTER TABLE users  DROP email;"))  # lines joined, no BOM
    assert user is not None
    assert table(history) == [
        *before,
        (3, "1.1", "add email", "UNDO_SQL", "U1_1__add_email.sql", undo, user[0], 0, True),
    ]
    assert set(FLYWAY.read(history, "flyway_schema_history", entries).applied) == {"1"}


def test_apply_appends_the_row_flyway_migrate_writes(
    history: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    jobs = next(e for e in entries if e.version == "2")
    applied = Applied("2", "V2__jobs", datetime.now(), "alice", None, execution_ms=40)

    with history.transaction():
        FLYWAY.record_applied(history, "flyway_schema_history", jobs, entries, applied)

    assert table(history)[-1] == (
        3,
        "2",
        "jobs",
        "SQL",
        "V2__jobs.sql",
        checksum_of(jobs.path),
        "alice",
        40,
        True,
    )
    assert set(FLYWAY.read(history, "flyway_schema_history", entries).applied) == {"1", "1.1", "2"}


def test_the_checksum_is_flyways_crc32_of_the_lines(tmp_path: Path) -> None:
    unix = write_tree(tmp_path, {"a.sql": "SELECT 1;\nSELECT 2;\n"}) / "a.sql"
    windows = write_tree(tmp_path, {"b.sql": "\ufeffSELECT 1;\r\nSELECT 2;"}) / "b.sql"

    assert checksum_of(unix) == checksum_of(windows) == signed(zlib.crc32(b"SELECT 1;SELECT 2;"))


def test_versions_at_or_below_a_baseline_are_applied_as_flyway_never_runs_them(
    conn: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    conn.execute(FLYWAY_DDL.format(table='"public"."flyway_schema_history"'))
    migrate(conn, 1, "1.1", "<< Flyway Baseline >>", "BASELINE", "<< Flyway Baseline >>", None)

    recorded = FLYWAY.read(conn, "flyway_schema_history", entries)

    assert sorted(recorded.applied) == ["1", "1.1"]  # "Below Baseline" in flyway info; 2 pending
    assert recorded.applied["1"].applied_by == "flyway"
