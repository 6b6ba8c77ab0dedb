"""The history and audit tables: the audit trail is append-only; versions of any length lint
accepts fit the history, and a history table an older backout made is upgraded in place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings
from backout.database.connection import Target
from backout.operations.apply import apply
from backout.operations.rollback import rollback
from tests.sample_project import ME, states, write


def test_the_audit_table_refuses_updates_and_deletes(
    settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    apply(settings, target, ME, to="001")

    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("UPDATE backout_audit_event SET outcome = 'x'")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("DELETE FROM backout_audit_event")


MAKE_IT_OLD = """
ALTER TABLE schema_migrations
  ALTER COLUMN version TYPE VARCHAR(10),
  ALTER COLUMN name TYPE VARCHAR(255),
  ALTER COLUMN applied_by TYPE VARCHAR(255),
  DROP COLUMN schema_before
"""
"""The history table made as the strategy's DDL (and backout before the upgrade) had it."""

TIMESTAMP_VERSION = "20260115093000"


def column_types(conn: psycopg.Connection[Any], table: str) -> dict[str, str]:
    found = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        (table,),
    ).fetchall()
    return dict(found)


def add_timestamped(project: Path, version: str = TIMESTAMP_VERSION) -> str:
    name = f"{version}_add_widgets"
    write(project, f"{name}.sql", "CREATE TABLE widgets (id int);", "DROP TABLE widgets;")
    return name


def test_a_fourteen_digit_version_applies_into_a_new_history_table(
    project: Path, settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    name = add_timestamped(project)

    outcome = apply(settings, target, ME)

    assert outcome.done[-1] == name
    history = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
    assert history.fetchall()[-1] == (TIMESTAMP_VERSION, name)
    assert conn.execute("SELECT to_regclass('widgets') IS NOT NULL").fetchone() == (True,)
    assert column_types(conn, "schema_migrations")["version"] == "text"
    assert states(settings, target)[name] == "applied"


def test_an_old_history_table_is_upgraded_in_place_and_keeps_its_rows(
    project: Path, settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    apply(settings, target, ME, to="002")
    conn.execute(MAKE_IT_OLD)
    kept = conn.execute("SELECT * FROM schema_migrations ORDER BY version").fetchall()
    assert column_types(conn, "schema_migrations")["version"] == "character varying(10)"
    name = add_timestamped(project)
    long_name = "9" * 300  # longer than any varchar the strategy's DDL had
    conn.execute(
        "INSERT INTO backout_audit_event (action, outcome, migration, reason) "
        "VALUES ('note', 'success', %s, %s)",
        (long_name, long_name),
    )

    outcome = apply(settings, target, ME)

    assert outcome.done[-1] == name
    types = column_types(conn, "schema_migrations")
    assert (types["version"], types["name"], types["applied_by"]) == ("text", "text", "text")
    assert types["schema_before"] == "character varying(64)"
    rows = conn.execute("SELECT * FROM schema_migrations ORDER BY version").fetchall()
    assert [r[:7] for r in rows[:2]] == kept
    assert [r[0] for r in rows] == ["001", "002", "003", "004", "005", "006", TIMESTAMP_VERSION]
    assert set(states(settings, target).values()) == {"applied"}
    # the primary key survived the change of type: a second row for a version is refused
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES ('001', 'again')")


def test_the_version_survives_a_rollback_and_a_reapply(
    project: Path, settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    name = add_timestamped(project)
    apply(settings, target, ME)

    rollback(settings, target, ME, TIMESTAMP_VERSION)
    assert states(settings, target)[name] == "rolled_back"
    apply(settings, target, ME, reapply=[name])

    assert states(settings, target)[name] == "applied"
    journal = conn.execute("SELECT count(*) FROM backout_audit_event WHERE migration = %s", (name,))
    assert journal.fetchone() == (3,)
