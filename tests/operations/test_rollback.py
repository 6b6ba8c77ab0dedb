"""``backout rollback`` (planned) against a real PostgreSQL: the documented SQL, refusals, the dry
run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings
from backout.database.connection import Target
from backout.errors import RefusedError
from backout.operations.apply import apply
from backout.operations.rollback import rollback
from tests.helpers import git_commit
from tests.sample_project import ME, rows, states, write


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
