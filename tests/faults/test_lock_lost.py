"""The migration lock cannot be lost silently: terminating the session that holds it ends the
change it guards, and a second run that then takes the lock never commits beside a first one
that could still commit.

Each test runs backout as a process of its own, holds a table lock in another connection so
that backout's SQL waits, finds the session holding the migration lock in ``pg_locks`` and ends
it with ``pg_terminate_backend``; then it checks the catalog, the history, the audit table and
the incident's timeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.faults.activity import PATIENCE, backend, no_backout_sessions, running, terminate
from tests.faults.lock_waits import (
    PRIORITY,
    applied_project,
    backout,
    lock_holder,
    one_error_line,
    rows,
)
from tests.runner import run


@pytest.fixture
def project(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    yield applied_project(tmp_path, database_url, monkeypatch)
    no_backout_sessions(database_url)


EMERGENCY = ("emergency", "006", "--reason", "claims stalled", "--yes", "--no-git",
             "--no-rehearsal", "--no-backup", "--backup-waiver", "jobs.priority is derived",
             "--lock-timeout", "10m")  # fmt: skip


def test_terminating_the_lock_holder_ends_the_change_and_a_second_run_cannot_commit_beside_it(
    project: Path, database_url: str
) -> None:
    with psycopg.connect(database_url, application_name="reporting") as blocker:
        blocker.execute("LOCK TABLE jobs IN ACCESS SHARE MODE")  # the rollback's DROP waits
        with running(EMERGENCY, project) as first:
            backend(database_url, "wait_event_type = 'Lock' AND query LIKE '%jobs%'")
            terminate(database_url, lock_holder(database_url))

            second = backout(project, "rollback", "003", "--yes", "--lock-wait", "20s")

            blocker.rollback()  # were the first still running, it could commit now
            _, stderr = first.communicate(timeout=PATIENCE)

    assert first.returncode == 1, stderr
    assert "terminat" in one_error_line(stderr)
    # the emergency changed nothing: the column, its history row, no success audit row
    assert rows(database_url, PRIORITY) == [(1,)]
    assert ("006",) in rows(database_url, "SELECT version FROM schema_migrations")
    assert rows(
        database_url,
        "SELECT outcome FROM backout_audit_event WHERE action = 'emergency' ORDER BY id",
    ) == [("failure",)]
    (postmortem,) = (project / "ops/postmortems").glob("INC-*.md")
    assert "rollback FAILED" in postmortem.read_text()
    # the second run took the lock only once the first could no longer commit, and finished
    assert second.returncode == 0, second.stderr
    assert ("003",) not in rows(database_url, "SELECT version FROM schema_migrations")
    assert rows(database_url, "SELECT to_regclass('idx_markets_status_closes_at')") == [(None,)]


JOURNALED = """\
-- Migration: 007_jobs_kind_index.sql
-- Purpose: p
-- Phase: 1
-- Checklist: c

CREATE INDEX CONCURRENTLY idx_jobs_kind ON jobs (kind);
ALTER TABLE markets ADD COLUMN shard int;

-- ROLLBACK
--   DROP INDEX CONCURRENTLY IF EXISTS idx_jobs_kind;
--   ALTER TABLE markets DROP COLUMN IF EXISTS shard;
"""


def test_a_journaled_step_whose_lock_holder_is_terminated_stops_then_resumes_under_a_new_lock(
    project: Path, database_url: str
) -> None:
    (project / "migrations/007_jobs_kind_index.sql").write_text(JOURNALED)
    assert run("apply", "--yes").exit_code == 0
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE markets IN ACCESS SHARE MODE")  # the DROP COLUMN waits
        with running(["rollback", "007", "--yes", "--lock-timeout", "10m"], project) as first:
            backend(database_url, "wait_event_type = 'Lock' AND query LIKE '%DROP COLUMN%'")
            terminate(database_url, lock_holder(database_url))
            _, stderr = first.communicate(timeout=PATIENCE)
        assert first.returncode == 1, stderr
        assert "journaled" in one_error_line(stderr)
        # the first statement ran and is journaled; the second never did
        assert rows(database_url, "SELECT to_regclass('idx_jobs_kind')") == [(None,)]
        assert rows(database_url, "SELECT count(*) FROM backout_journal") == [(1,)]
        assert ("007",) in rows(database_url, "SELECT version FROM schema_migrations")
        blocker.rollback()

    again = backout(project, "rollback", "007", "--yes")

    assert again.returncode == 0, again.stderr
    assert "already done in an earlier run" in again.stderr
    assert ("007",) not in rows(database_url, "SELECT version FROM schema_migrations")
    shard = "SELECT count(*) FROM information_schema.columns WHERE column_name = 'shard'"
    assert rows(database_url, shard) == [(0,)]
    assert rows(database_url, "SELECT count(*) FROM backout_journal") == [(0,)]


@pytest.mark.parametrize("fails", [False, True], ids=["succeeds", "fails"])
def test_terminating_the_watching_session_neither_stops_the_change_nor_loses_its_audit_row(
    project: Path, database_url: str, fails: bool
) -> None:
    path = project / "migrations/006_add_jobs_priority.sql"
    extra = "--   SELECT pg_sleep(1);\n" + ("--   SELECT 1 / 0;\n" if fails else "")
    path.write_text(path.read_text().replace("--   DROP INDEX", extra + "--   DROP INDEX"))
    command = ["rollback", "006", "--yes", "--use-current-rollback"]
    with running(command, project) as process:
        backend(database_url, "query = 'SELECT pg_sleep(1)'")
        terminate(database_url, backend(database_url, "application_name = 'backout (watch)'"))
        _, stderr = process.communicate(timeout=PATIENCE)

    audit = rows(
        database_url,
        "SELECT outcome FROM backout_audit_event WHERE action = 'rollback' ORDER BY id",
    )
    if fails:
        assert process.returncode == 1, stderr
        assert "division by zero" in one_error_line(stderr)
        assert audit == [("failure",)]  # written on a new watching connection
        assert rows(database_url, PRIORITY) == [(1,)]
    else:
        assert process.returncode == 0, stderr
        assert audit == [("success",)]
        assert rows(database_url, PRIORITY) == [(0,)]
        assert ("006",) not in rows(database_url, "SELECT version FROM schema_migrations")
