"""Bounded waits: behind a session that holds a table lock, every command that waits gives up in
the time it was given, names the session in its way and exits 5; a killed backout leaves no
backend waiting; ``--statement-timeout`` bounds the documented statements and nothing else.

backout runs as a process of its own; the blocker is a real session in another connection; the
tests synchronise on ``pg_stat_activity`` (a backout session waiting for a lock) and check the
catalog, the history and the audit table afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.faults.activity import backend, kill_9, no_backout_sessions, running, terminate
from tests.faults.lock_waits import (
    PRIORITY,
    applied_project,
    backout,
    execute,
    one_error_line,
    rows,
    select_is_not_blocked,
)

EMERGENCY = ("emergency", "006", "--reason", "claims stalled", "--yes", "--no-git",
             "--no-rehearsal")  # fmt: skip
QUICK = ("--lock-timeout", "300ms", "--lock-retries", "1")
DRY_RUNS = {
    "rollback": ("rollback", "006", "--dry-run"),
    "emergency": (*EMERGENCY, "--dry-run"),
}


@pytest.fixture
def project(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    yield applied_project(tmp_path, database_url, monkeypatch)
    no_backout_sessions(database_url)


def unchanged(url: str) -> None:
    """006 is still applied, its column still there, and no rollback was audited."""
    assert rows(url, PRIORITY) == [(1,)]
    assert ("006",) in rows(url, "SELECT version FROM schema_migrations")
    assert rows(
        url,
        "SELECT count(*) FROM backout_audit_event"
        " WHERE action IN ('rollback', 'emergency') AND outcome = 'success'",
    ) == [(0,)]


@pytest.mark.parametrize("command", sorted(DRY_RUNS))
def test_a_dry_run_behind_a_blocker_gives_up_names_it_and_leaves_nothing_queued(
    project: Path, database_url: str, command: str
) -> None:
    with psycopg.connect(database_url, application_name="long report") as blocker:
        blocker.execute("LOCK TABLE jobs IN ACCESS SHARE MODE")

        done = backout(project, *DRY_RUNS[command], *QUICK)

        assert done.returncode == 5, done.stderr
        error = one_error_line(done.stderr)
        assert f"pid {blocker.info.backend_pid}" in error
        assert "application 'long report'" in error
        assert "lock timeout" in done.stderr  # the retry was announced
        select_is_not_blocked(database_url, "jobs")
    unchanged(database_url)


def test_a_killed_dry_run_leaves_no_backend_waiting(project: Path, database_url: str) -> None:
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE jobs IN ACCESS SHARE MODE")
        dry_run = ("rollback", "006", "--dry-run", "--lock-timeout", "10m")
        with running(dry_run, project) as process:
            backend(database_url, "wait_event_type = 'Lock' AND query LIKE '%jobs%'")
            kill_9(process)

        no_backout_sessions(database_url)  # the server noticed: its queued request is gone
        select_is_not_blocked(database_url, "jobs")
    unchanged(database_url)


@pytest.mark.parametrize("dry_run", [False, True], ids=["emergency", "emergency --dry-run"])
def test_backup_planning_behind_an_exclusive_lock_retries_and_names_the_blocker(
    project: Path, database_url: str, dry_run: bool
) -> None:
    with psycopg.connect(database_url, application_name="vacuum full") as blocker:
        blocker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")

        done = backout(project, *EMERGENCY, *QUICK, *(["--dry-run"] if dry_run else []))

        assert done.returncode == 5, done.stderr
        error = one_error_line(done.stderr)
        assert "backup" in error
        assert f"pid {blocker.info.backend_pid}" in error
        blocker.rollback()
    unchanged(database_url)
    if not dry_run:
        (postmortem,) = (project / "ops/postmortems").glob("INC-*.md")
        assert "backup FAILED" in postmortem.read_text()


SLOW_AUDIT = """
CREATE FUNCTION slow_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.5); RETURN NEW; END $$;
CREATE TRIGGER slow_audit BEFORE INSERT ON backout_audit_event
  FOR EACH ROW EXECUTE FUNCTION slow_audit();
"""


def test_statement_timeout_bounds_the_rollback_sql_never_backouts_own_bookkeeping(
    project: Path, database_url: str
) -> None:
    execute(database_url, SLOW_AUDIT)  # every audit row now takes 0.5 s to write
    timeout = ("--statement-timeout", "200ms")

    done = backout(project, *EMERGENCY, *timeout)

    assert done.returncode == 0, done.stderr
    assert rows(database_url, PRIORITY) == [(0,)]
    assert ("006",) not in rows(database_url, "SELECT version FROM schema_migrations")
    assert rows(
        database_url,
        "SELECT outcome FROM backout_audit_event WHERE action = 'emergency' ORDER BY id",
    ) == [("success",)]
    (postmortem,) = (project / "ops/postmortems").glob("INC-*.md")
    timeline = postmortem.read_text()
    assert "schema check: " in timeline
    assert "FAILED" not in timeline


def test_statement_timeout_still_bounds_each_documented_statement(
    project: Path, database_url: str
) -> None:
    path = project / "migrations/006_add_jobs_priority.sql"
    path.write_text(
        path.read_text().replace("--   DROP INDEX", "--   SELECT pg_sleep(60);\n--   DROP INDEX")
    )

    done = backout(project, *EMERGENCY, "--use-current-rollback", "--statement-timeout", "200ms")

    assert done.returncode == 1, done.stderr
    assert "statement timeout" in one_error_line(done.stderr)
    unchanged(database_url)


def test_a_command_behind_an_exclusive_lock_on_the_history_gives_up_in_one_line(
    project: Path, database_url: str
) -> None:
    with psycopg.connect(database_url, application_name="maintenance") as blocker:
        blocker.execute("LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE")

        done = backout(project, "status")

        assert done.returncode == 5, done.stderr
        assert "lock timeout" in one_error_line(done.stderr)
        blocker.rollback()
    unchanged(database_url)


def test_a_failure_after_the_commit_never_says_nothing_was_rolled_back(
    project: Path, database_url: str
) -> None:
    with (project / "backout.toml").open("a") as config:
        config.write(
            '[[smoke_checks]]\nname = "jobs answer"\nsql = "SELECT pg_sleep(60) IS NULL"\n'
        )
    with running(EMERGENCY, project) as process:
        smoke = backend(database_url, "query LIKE '%pg_sleep(60)%'")  # after the commit
        terminate(database_url, smoke)
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == 0, stderr  # the rollback is done: the rest are warnings
    assert rows(database_url, PRIORITY) == [(0,)]
    assert rows(
        database_url,
        "SELECT outcome FROM backout_audit_event WHERE action = 'emergency' ORDER BY id",
    ) == [("success",)]
    (postmortem,) = (project / "ops/postmortems").glob("INC-*.md")
    timeline = postmortem.read_text()
    assert "smoke checks FAILED after the rollback committed" in timeline
    assert "nothing was rolled back" not in timeline
    assert "steps_pending:\n- smoke checks\n" in timeline  # a re-run does them
    assert "review_due: '20" in timeline  # the deadline is not lost
