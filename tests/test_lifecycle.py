"""apply, status, baseline and rollback against a real PostgreSQL: history, audit, locks, safety."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.connection import DatabaseError, Target
from backout.database.lock import LOCK_KEY, LockHeldError
from backout.database.runner import BlockedError, RunOptions, StatementFailedError
from backout.errors import ExitCode, MalformedMigrationError, RefusedError
from backout.operations.apply import apply, baseline
from backout.operations.approval import Operator
from backout.operations.rollback import rollback
from backout.operations.status import State, status
from tests.helpers import git_commit

SAMPLES = Path(__file__).resolve().parent.parent / "migrations"
ME = Operator("tester")
FAST = RunOptions(lock_wait=0.5, lock_timeout=0.2, lock_retries=1, backoff=0.05)
BANNER = "-- " + "=" * 76


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(SAMPLES, tmp_path / "migrations")
    (tmp_path / "backout.toml").write_text(
        'migrations = ["migrations"]\n'
        "[environments.preview]\n"
        'url_env = "PREVIEW_URL"\n'
        "auto_rollback = true\n"
        "[environments.production]\n"
        'url_env = "PROD_URL"\n'
        "require_approval = true\n"
    )
    return tmp_path


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project, environ={})


@pytest.fixture
def target(database_url: str) -> Target:
    return Target(database_url)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def rows(conn: psycopg.Connection[Any], query: str) -> list[tuple[Any, ...]]:
    return conn.execute(query).fetchall()


def states(settings: Settings, target: Target) -> dict[str, str]:
    return {s.name: s.state.value for s in status(settings, target)}


def write(project: Path, name: str, forward: str, rollback: str) -> None:
    header = f"-- Migration: {name}\n-- Purpose: p\n-- Phase: 1\n-- Checklist: c\n\n"
    block = f"{BANNER}\n-- ROLLBACK\n{BANNER}\n-- To rollback this migration:\n"
    lines = "".join(f"--   {line}\n" for line in rollback.splitlines())
    (project / "migrations" / name).write_text(header + forward + "\n\n" + block + lines)


def test_apply_records_history_with_checksums_and_audits_each_migration(
    settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    outcome = apply(settings, target, ME)

    assert outcome.done == [p.stem for p in sorted(SAMPLES.glob("*.sql"))]
    history = rows(conn, "SELECT version, name, applied_by, checksum FROM schema_migrations")
    assert [(v, n, by) for v, n, by, _ in history][:2] == [
        ("001", "001_create_jobs", "tester"),
        ("002", "002_create_core_schema", "tester"),
    ]
    assert all(len(checksum) == 64 for *_, checksum in history)
    audit = rows(conn, "SELECT action, outcome, migration FROM backout_audit_event ORDER BY id")
    assert audit[0] == ("apply", "success", "001_create_jobs")
    assert len(audit) == 6
    assert set(states(settings, target).values()) == {"applied"}


def test_status_before_anything_is_applied_is_all_pending_and_creates_nothing(
    settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    assert set(states(settings, target).values()) == {"pending"}
    assert rows(conn, "SELECT to_regclass('schema_migrations')") == [(None,)]


def test_a_failing_migration_leaves_no_trace_but_its_audited_failure(
    project: Path, settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    write(
        project, "007_bad.sql", "CREATE TABLE widgets (id int);\nSELECT 1/0;", "DROP TABLE widgets;"
    )

    with pytest.raises(StatementFailedError) as caught:
        apply(settings, target, ME)

    assert caught.value.exit_code == ExitCode.FAILED
    assert str(caught.value) == (
        "007_bad line 7: division by zero; its transaction was rolled back: nothing was changed"
    )
    assert rows(conn, "SELECT to_regclass('widgets')") == [(None,)]
    assert states(settings, target)["007_bad"] == "pending"
    assert states(settings, target)["006_add_jobs_priority"] == "applied"
    failure = rows(
        conn,
        "SELECT outcome, sqlstate, error FROM backout_audit_event WHERE migration = '007_bad'",
    )
    assert failure == [("failure", "22012", "division by zero")]


def test_an_applied_file_that_was_edited_is_reported_and_blocks_apply(
    project: Path, settings: Settings, target: Target
) -> None:
    apply(settings, target, ME, to="003")
    path = project / "migrations/002_create_core_schema.sql"
    path.write_text(path.read_text() + "\n-- edited after apply\n")

    assert states(settings, target)["002_create_core_schema"] == "modified"
    with pytest.raises(RefusedError) as caught:
        apply(settings, target, ME)
    assert caught.value.exit_code == ExitCode.REFUSED
    assert "migrations/002_create_core_schema.sql" in str(caught.value)


def test_a_missing_file_is_reported(project: Path, settings: Settings, target: Target) -> None:
    apply(settings, target, ME)
    (project / "migrations/006_add_jobs_priority.sql").unlink()

    assert states(settings, target)["006_add_jobs_priority"] == "missing"


def test_an_unfinished_stub_is_refused(project: Path, settings: Settings, target: Target) -> None:
    write(project, "007_fix.sql", "-- BACKOUT-STUB: write the corrected change\nSELECT 1;", "")

    with pytest.raises(RefusedError, match=r"007_fix\.sql is an unfinished stub"):
        apply(settings, target, ME)


def test_a_file_with_a_syntax_error_is_refused_before_anything_runs(
    project: Path, settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    write(project, "007_typo.sql", "CREAT TABLE w (id int);", "DROP TABLE w;")

    with pytest.raises(MalformedMigrationError):
        apply(settings, target, ME)
    assert rows(conn, "SELECT to_regclass('schema_migrations')") == [(None,)]


def test_a_rolled_back_migration_is_not_reapplied_without_reapply(
    settings: Settings, target: Target
) -> None:
    apply(settings, target, ME)
    rollback(settings, target, Operator("tester", reason="bad index"), "006")

    assert states(settings, target)["006_add_jobs_priority"] == "rolled_back"
    with pytest.raises(RefusedError, match="006_add_jobs_priority was rolled back"):
        apply(settings, target, ME)
    assert apply(settings, target, ME, reapply=["006"]).done == ["006_add_jobs_priority"]


def test_baseline_marks_pending_migrations_applied_without_running_them(
    settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    outcome = baseline(settings, target, ME, to="002")

    assert outcome.done == ["001_create_jobs", "002_create_core_schema"]
    assert rows(conn, "SELECT to_regclass('jobs')") == [(None,)]
    assert states(settings, target)["002_create_core_schema"] == "applied"
    assert rows(conn, "SELECT action FROM backout_audit_event") == [("baseline",), ("baseline",)]


def test_rollback_runs_the_documented_sql_and_removes_the_history_row(
    settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    apply(settings, target, ME)

    rollback(settings, target, ME, "006")

    columns = rows(conn, "SELECT 1 FROM information_schema.columns WHERE column_name = 'priority'")
    assert columns == []
    assert rows(conn, "SELECT count(*) FROM schema_migrations WHERE version = '006'") == [(0,)]
    last = rows(conn, "SELECT action, outcome FROM backout_audit_event ORDER BY id DESC LIMIT 1")
    assert last == [("rollback", "success")]


def test_rollback_of_a_migration_that_is_not_applied_is_refused(
    settings: Settings, target: Target
) -> None:
    with pytest.raises(RefusedError, match="006_add_jobs_priority is not applied"):
        rollback(settings, target, ME, "006")


def test_rollback_without_documented_sql_needs_a_rollback_file(
    project: Path, settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    write(project, "007_w.sql", "CREATE TABLE w (id int);", "")
    apply(settings, target, ME)
    with pytest.raises(RefusedError, match="007_w documents no rollback SQL"):
        rollback(settings, target, ME, "007")
    (project / "undo.sql").write_text("DROP TABLE w;\n")

    rollback(settings, target, ME, "007", rollback_file=project / "undo.sql")

    assert rows(conn, "SELECT to_regclass('w')") == [(None,)]


def test_a_rollback_section_edited_since_apply_needs_explicit_acceptance(
    project: Path, settings: Settings, target: Target
) -> None:
    apply(settings, target, ME)
    path = project / "migrations/006_add_jobs_priority.sql"
    path.write_text(path.read_text() + "-- Note: checked again.\n")

    with pytest.raises(RefusedError, match="ROLLBACK section of 006_add_jobs_priority changed"):
        rollback(settings, target, ME, "006")
    rollback(settings, target, ME, "006", use_current_rollback=True)


def test_rollback_dry_run_changes_nothing_and_reports_each_statement(
    settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    apply(settings, target, ME)

    outcome = rollback(settings, target, ME, "006", dry_run=True)

    assert outcome.done == [
        "ok      line 30: DROP INDEX IF EXISTS idx_jobs_claimable_priority",
        "ok      line 31: ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_priority_range",
        "ok      line 32: ALTER TABLE jobs DROP COLUMN IF EXISTS priority",
    ]
    assert states(settings, target)["006_add_jobs_priority"] == "applied"
    count = "SELECT count(*) FROM information_schema.columns WHERE column_name = 'priority'"
    assert rows(conn, count) == [(1,)]


def test_a_second_run_waits_for_the_lock_then_names_its_holder(
    settings: Settings, target: Target, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True, application_name="other run") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))

        with pytest.raises(LockHeldError) as caught:
            apply(settings, target, ME, options=FAST)

        assert caught.value.exit_code == ExitCode.LOCKED
        assert f"pid {holder.info.backend_pid}" in str(caught.value)
        assert "application 'other run'" in str(caught.value)
    assert set(states(settings, target).values()) == {"pending"}


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


def test_an_environment_that_requires_approval_refuses_without_it(
    settings: Settings, database_url: str
) -> None:
    production = Target(database_url, settings.environments["production"])

    with pytest.raises(RefusedError, match="requires approval"):
        apply(settings, production, ME)
    with pytest.raises(RefusedError, match="cannot approve their own change"):
        apply(settings, production, Operator("tester", "Tester", "ship it"))


def test_an_approval_is_audited_with_the_hash_of_the_exact_sql(
    settings: Settings, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    production = Target(database_url, settings.environments["production"])

    apply(settings, production, Operator("tester", "lead", "release 12"), to="001")

    approval = rows(
        conn,
        "SELECT approver, reason, environment, length(sql_sha256) FROM backout_audit_event "
        "WHERE action = 'approval'",
    )
    assert approval == [("lead", "release 12", "production", 64)]


def test_auto_rollback_undoes_what_the_failed_run_applied(
    project: Path, settings: Settings, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    preview = Target(database_url, settings.environments["preview"])
    apply(settings, preview, ME, to="005")
    write(project, "007_bad.sql", "SELECT 1/0;", "SELECT 1;")

    with pytest.raises(StatementFailedError):
        apply(settings, preview, ME)

    assert states(settings, preview)["006_add_jobs_priority"] == "rolled_back"
    assert rows(
        conn, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'priority'"
    ) == [(0,)]


def test_apply_on_a_named_environment_appends_to_the_decisions_log(
    project: Path, settings: Settings, database_url: str
) -> None:
    preview = Target(database_url, settings.environments["preview"])

    apply(settings, preview, Operator("tester", reason="release 12"), to="001")

    log = (project / "docs/decisions.md").read_text()
    assert "Applied 001_create_jobs on preview" in log
    assert "release 12" in log


def test_the_audit_table_refuses_updates_and_deletes(
    settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    apply(settings, target, ME, to="001")

    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("UPDATE backout_audit_event SET outcome = 'x'")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("DELETE FROM backout_audit_event")


def test_an_unreachable_database_is_one_line_without_the_password(settings: Settings) -> None:
    target = Target("postgresql://ada:s3cret@127.0.0.1:1/nope")

    with pytest.raises(DatabaseError) as caught:
        status(settings, target)

    assert "s3cret" not in str(caught.value)
    assert str(caught.value).startswith("cannot connect to postgresql://ada:***@127.0.0.1:1/nope")


def test_status_lists_the_commits_that_changed_an_applied_file(
    project: Path, settings: Settings, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    before = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    git_commit(project, {"backout.toml": (project / "backout.toml").read_text()}, "init", at=before)
    apply(settings, target, ME, to="002")
    path = "migrations/002_create_core_schema.sql"
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    git_commit(project, {path: (project / path).read_text() + "-- tweak\n"}, "Tweak 002", at=later)

    (modified,) = [s for s in status(settings, target) if s.state is State.MODIFIED]

    assert modified.name == "002_create_core_schema"
    assert [(c.author, c.summary) for c in modified.changes] == [("Ada Lovelace", "Tweak 002")]


def test_a_changed_rollback_section_is_refused_with_the_difference(
    project: Path, settings: Settings, target: Target
) -> None:
    path = "migrations/006_add_jobs_priority.sql"
    before = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    git_commit(project, {path: (project / path).read_text()}, "add 006", at=before)
    apply(settings, target, ME)
    text = (
        (project / path)
        .read_text()
        .replace("DROP COLUMN IF EXISTS priority", "DROP COLUMN priority")
    )
    (project / path).write_text(text)

    with pytest.raises(RefusedError) as caught:
        rollback(settings, target, ME, "006")

    assert caught.value.evidence is not None
    assert "---   ALTER TABLE jobs DROP COLUMN IF EXISTS priority;" in caught.value.evidence
    assert "+--   ALTER TABLE jobs DROP COLUMN priority;" in caught.value.evidence


def test_two_concurrent_applies_the_second_waits_then_names_the_first(
    project: Path, settings: Settings, target: Target
) -> None:
    write(project, "007_slow.sql", "SELECT pg_sleep(2);", "SELECT 1;")
    first = threading.Thread(target=lambda: apply(settings, target, ME))
    first.start()
    time.sleep(0.5)

    with pytest.raises(LockHeldError) as caught:
        apply(settings, target, ME, options=FAST)
    first.join()

    assert "application 'backout'" in str(caught.value)
    assert set(states(settings, target).values()) == {"applied"}
