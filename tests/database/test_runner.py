"""The statement runner under faults: lock timeouts retried and reported with their blocker, a
terminated backend, a non-transactional step resumed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings
from backout.database.connection import Target
from backout.database.runner import BlockedError, StatementFailedError
from backout.errors import ExitCode
from backout.operations.apply import apply
from backout.operations.rollback import rollback
from tests.sample_project import FAST, ME, rows, states, write


def test_a_locked_table_is_retried_then_reported_with_its_blocker(
    settings: Settings, target: Target, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    apply(settings, target, ME, to="005")
    progress: list[str] = []
    with psycopg.connect(database_url, application_name="long report") as blocker:
        blocker.execute("LOCK TABLE jobs IN ACCESS SHARE MODE")

        with pytest.raises(BlockedError) as caught:
            apply(settings, target, ME, options=FAST, report=progress.append)

        assert caught.value.exit_code == ExitCode.LOCKED
        assert f"pid {blocker.info.backend_pid}" in str(caught.value)
        blocker.rollback()
    assert any("lock timeout" in line and "retry 1/1" in line for line in progress)
    assert states(settings, target)["006_add_jobs_priority"] == "pending"
    failure = rows(
        conn,
        "SELECT outcome, sqlstate FROM backout_audit_event "
        "WHERE migration = '006_add_jobs_priority'",
    )
    assert failure == [("failure", "55P03")]


def test_a_backend_terminated_mid_run_fails_cleanly_and_is_audited(
    project: Path,
    settings: Settings,
    target: Target,
    database_url: str,
    conn: psycopg.Connection[Any],
) -> None:
    write(
        project, "007_slow.sql", "CREATE TABLE w (id int);\nSELECT pg_sleep(30);", "DROP TABLE w;"
    )

    def terminate() -> None:
        with psycopg.connect(database_url, autocommit=True) as killer:
            for _ in range(100):
                found = killer.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'backout' AND query LIKE '%pg_sleep%'"
                    " AND datname = current_database()"
                ).fetchall()
                if found:
                    return
                time.sleep(0.05)

    thread = threading.Thread(target=terminate)
    thread.start()
    with pytest.raises(StatementFailedError) as caught:
        apply(settings, target, ME)
    thread.join()

    assert caught.value.exit_code == ExitCode.FAILED
    assert rows(conn, "SELECT to_regclass('w')") == [(None,)]
    assert rows(conn, "SELECT outcome FROM backout_audit_event WHERE migration = '007_slow'") == [
        ("failure",)
    ]


def test_a_non_transactional_rollback_interrupted_resumes_where_it_stopped(
    project: Path,
    settings: Settings,
    target: Target,
    database_url: str,
    conn: psycopg.Connection[Any],
) -> None:
    write(
        project,
        "007_indexes.sql",
        "CREATE INDEX CONCURRENTLY idx_jobs_kind ON jobs (kind);\n"
        "CREATE INDEX CONCURRENTLY idx_events_kind ON events (kind);",
        "DROP INDEX CONCURRENTLY IF EXISTS idx_jobs_kind;\n"
        "DROP INDEX CONCURRENTLY IF EXISTS idx_events_kind;",
    )
    apply(settings, target, ME)
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(BlockedError):
            rollback(settings, target, ME, "007", options=FAST)
        blocker.rollback()
    assert rows(conn, "SELECT to_regclass('idx_jobs_kind'), to_regclass('idx_events_kind')") == [
        (None, "idx_events_kind")
    ]
    progress: list[str] = []

    rollback(settings, target, ME, "007", options=FAST, report=progress.append)

    assert progress[0] == "  line 13: already done in an earlier run, skipped"
    assert rows(conn, "SELECT to_regclass('idx_events_kind')") == [(None,)]
    assert states(settings, target)["007_indexes"] == "rolled_back"


SLOW_AUDIT = """
CREATE FUNCTION slow_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.4); RETURN NEW; END $$;
CREATE TRIGGER slow_audit BEFORE INSERT ON backout_audit_event
  FOR EACH ROW EXECUTE FUNCTION slow_audit();
"""


def test_statement_timeout_bounds_the_documented_statements_never_the_bookkeeping(
    project: Path, settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    apply(settings, target, ME)
    conn.execute(SLOW_AUDIT)  # each audit row takes longer to write than the timeout allows
    write(
        project,
        "007_index.sql",
        "CREATE INDEX CONCURRENTLY idx_jobs_kind ON jobs (kind);",
        "DROP INDEX CONCURRENTLY IF EXISTS idx_jobs_kind;",
    )
    write(project, "008_slow.sql", "CREATE TABLE w (id int);\nSELECT pg_sleep(2);", "DROP TABLE w;")
    bounded = replace(FAST, statement_timeout=0.2)

    apply(settings, target, ME, to="007", options=bounded)  # journaled: statement by statement
    with pytest.raises(StatementFailedError) as caught:
        apply(settings, target, ME, options=bounded)
    rollback(settings, target, ME, "006", options=bounded)  # one transaction

    assert caught.value.sqlstate == "57014"
    assert "008_slow line 7: canceling statement due to statement timeout" in str(caught.value)
    assert states(settings, target)["007_index"] == "applied"
    assert states(settings, target)["006_add_jobs_priority"] == "rolled_back"
    assert states(settings, target)["008_slow"] == "pending"
    assert rows(conn, "SELECT to_regclass('idx_jobs_kind'), to_regclass('w')") == [
        ("idx_jobs_kind", None)
    ]
    audit = rows(
        conn,
        "SELECT migration, outcome FROM backout_audit_event"
        " WHERE migration IN ('007_index', '006_add_jobs_priority', '008_slow') ORDER BY id",
    )
    assert audit[-3:] == [
        ("007_index", "success"),
        ("008_slow", "failure"),
        ("006_add_jobs_priority", "success"),
    ]
