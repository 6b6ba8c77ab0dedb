"""``backout apply`` and ``baseline`` against a real PostgreSQL: history, audit, refusals,
auto_rollback, the decisions log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings
from backout.database.connection import Target
from backout.database.runner import StatementFailedError
from backout.errors import ExitCode, MalformedMigrationError, RefusedError
from backout.operations.apply import apply, baseline
from backout.operations.approval import Operator
from backout.operations.rollback import rollback
from tests.sample_project import ME, rows, states, write
from tests.samples import SAMPLES


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
        "007_bad line 7: division by zero; its transaction was rolled back: nothing was changed; "
        "next: fix the cause or the migration (it is not applied yet), and run it again"
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


def test_a_rolled_back_migration_is_skipped_not_reapplied_without_reapply(
    settings: Settings, target: Target
) -> None:
    apply(settings, target, ME)
    rollback(settings, target, Operator("tester", reason="bad index"), "006")

    assert states(settings, target)["006_add_jobs_priority"] == "rolled_back"
    skipped = apply(settings, target, ME)
    assert (skipped.done, len(skipped.plan.warnings)) == ([], 1)
    assert skipped.plan.warnings[0].startswith("skipped 006_add_jobs_priority: rolled back")
    assert states(settings, target)["006_add_jobs_priority"] == "rolled_back"
    assert apply(settings, target, ME, reapply=["006"]).done == ["006_add_jobs_priority"]


def test_baseline_marks_pending_migrations_applied_without_running_them(
    settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    outcome = baseline(settings, target, ME, to="002")

    assert outcome.done == ["001_create_jobs", "002_create_core_schema"]
    assert rows(conn, "SELECT to_regclass('jobs')") == [(None,)]
    assert states(settings, target)["002_create_core_schema"] == "applied"
    assert rows(conn, "SELECT action FROM backout_audit_event") == [("baseline",), ("baseline",)]


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
