"""Liquibase's ``databasechangelog``: read as ``liquibase status`` reads it, a rollback written
as ``liquibase rollback`` writes it (the changeset's row deleted), an apply as ``liquibase
update`` inserts it; a held ``databasechangeloglock`` explained, never released.

The tables are built with the DDL Liquibase runs on PostgreSQL
(``CreateDatabaseChangeLogTableGenerator``, ``CreateDatabaseChangeLogLockTableGenerator``) and
filled as ``MarkChangeSetRanGenerator`` inserts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.database.histories import adapter
from backout.database.histories.base import columns_of
from backout.database.histories.liquibase import LIQUIBASE
from backout.database.history import Applied, ensure_history
from backout.migrations.entry import Entry
from backout.migrations.formats.liquibase import LiquibaseFormat
from tests.helpers import write_tree

CHANGELOG_DDL = """
CREATE TABLE {table} (ID VARCHAR(255) NOT NULL, AUTHOR VARCHAR(255) NOT NULL,
  FILENAME VARCHAR(255) NOT NULL, DATEEXECUTED TIMESTAMP WITHOUT TIME ZONE NOT NULL,
  ORDEREXECUTED INTEGER NOT NULL, EXECTYPE VARCHAR(10) NOT NULL, MD5SUM VARCHAR(35),
  DESCRIPTION VARCHAR(255), COMMENTS VARCHAR(255), TAG VARCHAR(255), LIQUIBASE VARCHAR(20),
  CONTEXTS VARCHAR(255), LABELS VARCHAR(255), DEPLOYMENT_ID VARCHAR(10))
"""
"""What ``liquibase update-sql`` prints for the history table on PostgreSQL (4.x)."""

LOCK_DDL = """
CREATE TABLE public.databasechangeloglock (ID INTEGER NOT NULL, LOCKED BOOLEAN NOT NULL,
  LOCKGRANTED TIMESTAMP WITHOUT TIME ZONE, LOCKEDBY VARCHAR(255),
  CONSTRAINT databasechangeloglock_pkey PRIMARY KEY (ID));
INSERT INTO public.databasechangeloglock (ID, LOCKED) VALUES (1, FALSE);
"""

UPDATE_INSERT = (
    "INSERT INTO public.databasechangelog (ID, AUTHOR, FILENAME, DATEEXECUTED, ORDEREXECUTED,"
    " MD5SUM, DESCRIPTION, COMMENTS, EXECTYPE, CONTEXTS, LABELS, LIQUIBASE, DEPLOYMENT_ID)"
    " VALUES (%s, %s, %s, NOW(), %s, %s, 'sql', '', %s, NULL, NULL, '4.29.2', '0000000001')"
)
"""``MarkChangeSetRanGenerator``'s insert for a first run."""

USERS = """--liquibase formatted sql

--changeset alice:create-users
CREATE TABLE users (id int);
--rollback DROP TABLE users;

--changeset bob:users-email
--comment: the email column
ALTER TABLE users ADD email text;
--rollback ALTER TABLE users DROP email;
"""

JOBS = """--liquibase formatted sql

--changeset carol:jobs context:prod labels:jobs
CREATE TABLE jobs (id int);
--rollback DROP TABLE jobs;
"""

PATH = "db/changelog/001-users.sql"


@pytest.fixture
def entries(tmp_path: Path) -> list[Entry]:
    folder = write_tree(tmp_path / "changelog", {"001-users.sql": USERS, "002-jobs.sql": JOBS})
    return list(LiquibaseFormat().entries(folder))


@pytest.fixture
def history(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """After ``liquibase update --changelog-file=db/changelog/001-users.sql``."""
    conn.execute(CHANGELOG_DDL.format(table="public.databasechangelog"))
    conn.execute(LOCK_DDL)
    update(conn, "create-users", "alice", PATH, 1)
    update(conn, "users-email", "bob", PATH, 2)
    return conn


def update(
    conn: psycopg.Connection[Any],
    id_: str,
    author: str,
    filename: str,
    order: int,
    exectype: str = "EXECUTED",
) -> None:
    conn.execute(UPDATE_INSERT, (id_, author, filename, order, "9:0123", exectype))


def table(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT id, author, filename, orderexecuted, exectype FROM databasechangelog"
        " ORDER BY orderexecuted"
    ).fetchall()


def columns(conn: psycopg.Connection[Any], schema: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute"
        " WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum",
        (f"{schema}.databasechangelog",),
    ).fetchall()


def test_create_makes_the_table_liquibase_makes(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE SCHEMA liquibase_made")
    conn.execute(CHANGELOG_DDL.format(table="liquibase_made.databasechangelog"))

    LIQUIBASE.create(conn, "databasechangelog")

    assert columns(conn, "public") == columns(conn, "liquibase_made")
    no_keys = (
        "SELECT count(*) FROM pg_constraint"
        " WHERE conrelid = 'databasechangelog'::regclass AND contype IN ('p', 'u')"
    )
    assert conn.execute(no_keys).fetchone() == (0,)
    assert adapter("liquibase") is LIQUIBASE


def test_recognises_liquibase_tables_only(conn: psycopg.Connection[Any]) -> None:
    conn.execute(CHANGELOG_DDL.format(table="databasechangelog"))
    ensure_history(conn, "schema_migrations")
    conn.execute("CREATE TABLE dbmate (version varchar(128) PRIMARY KEY)")
    conn.execute("CREATE TABLE golang_migrate (version bigint PRIMARY KEY, dirty boolean)")

    assert LIQUIBASE.recognises(columns_of(conn, "databasechangelog"))
    for other in ("schema_migrations", "dbmate", "golang_migrate"):
        assert not LIQUIBASE.recognises(columns_of(conn, other))


def test_read_matches_rows_to_changesets_by_id_author_and_file_name(
    history: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    update(history, "old", "dave", "db/changelog/000-gone.sql", 3, "MARK_RAN")
    update(history, "jobs", "carol", "db/changelog/002-jobs.sql", 4, "SKIPPED")

    recorded = LIQUIBASE.read(history, "databasechangelog", entries)

    assert {v: a.name for v, a in recorded.applied.items()} == {
        "001.01": "001-users::create-users::alice",
        "001.02": "001-users::users-email::bob",
        "db/changelog/000-gone.sql::old::dave": "db/changelog/000-gone.sql::old::dave",
    }
    applied_at = recorded.applied["001.01"].applied_at
    assert isinstance(applied_at, datetime)
    assert applied_at.tzinfo is not None
    assert recorded.troubles == ()


def test_a_failed_row_and_a_held_lock_are_troubles_left_as_they_are(
    history: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    update(history, "jobs", "carol", "db/changelog/002-jobs.sql", 3, "FAILED")
    history.execute(
        "UPDATE databasechangeloglock SET LOCKED = TRUE,"
        " LOCKGRANTED = '2026-01-15 09:30:00', LOCKEDBY = 'ci-runner (10.0.0.7)' WHERE ID = 1"
    )

    recorded = LIQUIBASE.read(history, "databasechangelog", entries)

    assert "002.01" not in recorded.applied
    failed, lock = recorded.troubles
    assert failed.migration == "002-jobs::jobs::carol"
    assert "as FAILED" in failed.what
    assert lock.migration is None
    assert "since 2026-01-15 09:30:00, by ci-runner (10.0.0.7)" in lock.what
    assert "`liquibase release-locks`" in lock.way_out
    assert history.execute("SELECT locked FROM databasechangeloglock").fetchone() == (True,)
    assert len(table(history)) == 3


def test_rollback_deletes_the_changesets_row_as_liquibase_does(
    history: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    email = next(e for e in entries if e.version == "001.02")

    with history.transaction():  # the rollback's own transaction
        LIQUIBASE.record_rolled_back(history, "databasechangelog", email, entries)

    assert table(history) == [("create-users", "alice", PATH, 1, "EXECUTED")]
    assert set(LIQUIBASE.read(history, "databasechangelog", entries).applied) == {"001.01"}


def test_apply_inserts_the_row_liquibase_update_writes(
    history: psycopg.Connection[Any], entries: list[Entry]
) -> None:
    jobs = next(e for e in entries if e.version == "002.01")
    applied = Applied("002.01", jobs.name, datetime.now(), "alice", None)

    with history.transaction():
        LIQUIBASE.record_applied(history, "databasechangelog", jobs, entries, applied)

    row = history.execute(
        "SELECT id, author, filename, orderexecuted, exectype, md5sum, description, comments,"
        " contexts, labels, liquibase, length(deployment_id), dateexecuted IS NOT NULL"
        " FROM databasechangelog WHERE id = 'jobs'"
    ).fetchone()
    assert row == (
        "jobs",
        "carol",
        "db/changelog/002-jobs.sql",  # beside the files Liquibase already recorded
        3,
        "EXECUTED",
        None,
        "sql",
        "",
        "prod",
        "jobs",
        None,
        10,
        True,
    )
    assert set(LIQUIBASE.read(history, "databasechangelog", entries).applied) == {
        "001.01",
        "001.02",
        "002.01",
    }
