"""The emergency procedure end to end: real PostgreSQL, real files, a real git repository."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.database.runner import BlockedError, RunOptions, StatementFailedError
from backout.errors import ExitCode, RefusedError, UsageError
from backout.migrations.file import read_migration
from backout.migrations.lint import lint_file
from backout.operations import emergency as procedure
from backout.operations.apply import apply
from backout.operations.status import status
from backout.postmortems.front_matter import read_front_matter
from tests.incident_project import ENGINEER, applied, committed_project

ME = ENGINEER
FAST = RunOptions(lock_wait=0.5, lock_timeout=0.2, lock_retries=1, backoff=0.05)
PRIORITY_COLUMNS = "SELECT count(*) FROM information_schema.columns WHERE column_name = 'priority'"
SEED = """
INSERT INTO markets (slug, title, category, status) VALUES ('m1', 'Market', 'economy', 'open');
INSERT INTO jobs (kind, payload, priority) VALUES ('payout', '{"user": 7}', 5), ('digest', '{}', 0);
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return committed_project(tmp_path)


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project, environ={})


@pytest.fixture
def target(database_url: str, settings: Settings) -> Target:
    target = applied(settings, database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SEED)
    return target


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def run(settings: Settings, target: Target, reference: str = "006", **kw: Any) -> procedure.Result:
    options = kw.pop("options", None)
    kw.setdefault("rehearse", False)  # one test below rehearses; the others need not wait
    request = procedure.Request(
        reference=reference, reason=kw.pop("reason", "claims stalled"), **kw
    )
    return procedure.emergency(settings, target, ME, request, options=options)


def git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=project, check=True, capture_output=True, text=True
    ).stdout


def test_the_whole_procedure_on_a_sample_migration(
    project: Path, settings: Settings, target: Target
) -> None:
    result = run(settings, target, rehearse=True)

    day = datetime.now(UTC).strftime("%Y%m%d")
    assert result.incident_id == f"INC-{day}-01"
    # the database: column gone, history row gone, audit row with the incident
    assert rows(
        target.url, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'priority'"
    ) == [(0,)]
    assert rows(target.url, "SELECT count(*) FROM schema_migrations WHERE version = '006'") == [
        (0,)
    ]
    audit = rows(
        target.url,
        "SELECT action, outcome, details->>'incident', details->>'review_due' "
        "FROM backout_audit_event ORDER BY id DESC LIMIT 1",
    )
    assert audit[0][:3] == ("emergency", "success", result.incident_id)
    # the postmortem
    assert result.postmortem is not None
    front = read_front_matter(result.postmortem.read_text())
    assert front["id"] == result.incident_id
    assert front["status"] == "draft"
    assert front["migration"] == "006_add_jobs_priority"
    assert front["reason"] == "claims stalled"
    assert result.rolled_back_at is not None
    assert result.review_due == result.rolled_back_at + timedelta(hours=72)
    assert front["review_due"] == audit[0][3].replace("+00:00", "Z")
    assert front["fix_forward"] == "migrations/007_fix_add_jobs_priority.sql"
    assert front["action_items"][0]["title"].startswith("Write, review and apply 007_fix")
    text = result.postmortem.read_text()
    assert "ran line 32: ALTER TABLE jobs DROP COLUMN IF EXISTS priority" in text
    assert "backup done:" in text
    assert front["rehearsal"] == (
        "applied 6 migrations from 1 folder as recorded on the target, then rolled back "
        "006_add_jobs_priority: passed (and applying it again gave the same schema)"
    )
    # the backup, outside git
    assert result.backup_folder == project / ".backout/backups" / result.incident_id
    assert (result.backup_folder / "manifest.json").is_file()
    # the fix-forward stub: lint and apply refuse it
    stub = read_migration(project / "migrations/007_fix_add_jobs_priority.sql")
    assert stub.is_stub
    assert stub.header_value("Incident") == result.incident_id
    assert stub.header_value("Supersedes") == "006_add_jobs_priority"
    assert "unfinished-stub" in {f.rule for f in lint_file(stub)}
    with pytest.raises(RefusedError, match="unfinished stub"):  # 006 itself is skipped
        apply(settings, target, ME)
    assert "--   ALTER TABLE jobs ADD COLUMN priority" in stub.path.read_text()  # for reference
    # git: exactly the two files on incident/<id>
    assert result.git is not None
    assert result.git.branch == f"incident/{result.incident_id}"
    changed = git(project, "diff", "--name-only", "HEAD", result.git.branch).split()
    assert sorted(changed) == [
        "migrations/007_fix_add_jobs_priority.sql",
        f"ops/postmortems/{result.postmortem.name}",
    ]


def test_a_second_emergency_on_the_same_migration_is_refused_naming_the_incident(
    settings: Settings, target: Target
) -> None:
    first = run(settings, target)

    with pytest.raises(RefusedError) as caught:
        run(settings, target)

    assert caught.value.exit_code == ExitCode.REFUSED
    assert f"incident {first.incident_id}" in str(caught.value)


def test_the_engineers_own_work_is_left_exactly_as_it_was(
    project: Path, settings: Settings, target: Target
) -> None:
    (project / "notes.txt").write_text("untracked\n")
    (project / "migrations/001_create_jobs.sql").write_text("-- edited, unstaged\n")
    (project / "staged.txt").write_text("staged\n")
    git(project, "add", "staged.txt")
    before = (git(project, "status", "--porcelain"), (project / ".git/index").read_bytes())

    result = run(settings, target)

    assert result.git is not None
    after_status = git(project, "status", "--porcelain")
    assert (project / ".git/index").read_bytes() == before[1]
    assert set(before[0].splitlines()) <= set(after_status.splitlines())
    assert "staged.txt" not in git(project, "ls-tree", "-r", "--name-only", result.git.branch)


def test_typed_text_cannot_break_the_front_matter(settings: Settings, target: Target) -> None:
    reason = "oops\nreview_due: 1999-01-01T00:00:00Z\n---\nstatus: closed"

    result = run(settings, target, reason=reason, owner="Eve\nstatus: closed")

    assert result.postmortem is not None
    front = read_front_matter(result.postmortem.read_text())
    assert front["reason"] == reason
    assert front["owner"] == "Eve\nstatus: closed"
    assert front["status"] == "draft"
    assert front["review_due"] != "1999-01-01T00:00:00Z"


def test_a_dry_run_writes_nothing_and_changes_nothing(
    project: Path, settings: Settings, target: Target
) -> None:
    result = run(settings, target, dry_run=True)

    assert result.dry_run_lines[-1].startswith("ok      line 32: ALTER TABLE jobs DROP COLUMN")
    assert not (project / "ops").exists()
    assert not (project / ".backout").exists()
    assert rows(target.url, "SELECT count(*) FROM schema_migrations") == [(6,)]


def test_no_documented_rollback_is_a_usage_error_saying_how_to_proceed(
    project: Path, settings: Settings, target: Target
) -> None:
    (project / "migrations/007_w.sql").write_text("CREATE TABLE w (id int);\n")
    apply(settings, target, ME)

    with pytest.raises(UsageError, match="documents no rollback SQL") as caught:
        run(settings, target, reference="007")

    assert "--rollback-file" in str(caught.value)


def test_no_backup_needs_a_written_waiver(settings: Settings, target: Target) -> None:
    with pytest.raises(UsageError, match="--backup-waiver"):
        run(settings, target, no_backup=True)

    result = run(settings, target, no_backup=True, backup_waiver="priorities are recomputed")

    assert result.postmortem is not None
    front = read_front_matter(result.postmortem.read_text())
    assert front["backup_waiver"] == "priorities are recomputed"


def test_a_database_without_history_needs_assume_applied(
    project: Path, database_url: str, settings: Settings
) -> None:
    target = Target(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for path in sorted((project / "migrations").glob("*.sql")):
            conn.execute(path.read_text())  # migrated by hand, as in Phase 1

    with pytest.raises(RefusedError, match="--assume-applied"):
        run(settings, target)
    result = run(settings, target, assume_applied=True)

    assert result.incident_id is not None


def test_a_locked_table_fails_with_the_attempt_recorded_then_a_rerun_continues(
    settings: Settings, target: Target
) -> None:
    with psycopg.connect(target.url) as blocker:
        blocker.execute("LOCK TABLE jobs IN ACCESS SHARE MODE")
        with pytest.raises(BlockedError) as caught:
            run(settings, target, options=FAST)
        blocker.rollback()
    assert caught.value.exit_code == ExitCode.LOCKED
    (postmortem,) = (settings.postmortems).glob("INC-*.md")
    assert "rollback FAILED" in postmortem.read_text()
    assert rows(target.url, "SELECT count(*) FROM schema_migrations") == [(6,)]

    result = run(settings, target)

    assert result.postmortem == postmortem
    assert "re-run by" in postmortem.read_text()
    assert "rollback FAILED" in postmortem.read_text()


def test_a_backend_killed_mid_rollback_leaves_the_database_unchanged(
    project: Path, settings: Settings, target: Target
) -> None:
    path = project / "migrations/006_add_jobs_priority.sql"
    path.write_text(
        path.read_text().replace("--   DROP INDEX", "--   SELECT pg_sleep(30);\n--   DROP INDEX")
    )

    def terminate() -> None:
        with psycopg.connect(target.url, autocommit=True) as killer:
            for _ in range(200):
                if killer.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'backout' AND query LIKE '%pg_sleep%'"
                    " AND datname = current_database()"
                ).fetchall():
                    return
                time.sleep(0.05)

    thread = threading.Thread(target=terminate)
    thread.start()
    with pytest.raises(StatementFailedError):
        run(settings, target, use_current_rollback=True)
    thread.join()

    assert rows(
        target.url, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'priority'"
    ) == [(1,)]
    (postmortem,) = settings.postmortems.glob("INC-*.md")
    assert "rollback FAILED" in postmortem.read_text()


def test_the_seeds_example_rollback_trigger_function_and_table_cascade(
    project: Path, database_url: str, settings: Settings
) -> None:
    target = Target(database_url)
    apply(settings, target, ME, to="001")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO jobs (kind, payload) VALUES ('payout', '{\"user\": 7}')")
        before = conn.execute("SELECT jobs::text FROM jobs").fetchall()

    result = run(settings, target, reference="001")

    assert rows(
        database_url, "SELECT to_regclass('jobs'), to_regproc('update_updated_at_column')"
    ) == [(None, None)]
    assert result.backup is not None
    assert [(i.table, i.rows) for i in result.backup.items] == [("public.jobs", 1)]
    # the documented way back: re-apply the forward migration, then the backup's commands
    assert result.backup_folder is not None
    script = "\n".join(i.restore for i in result.backup.items)
    forward = read_migration(project / "migrations/001_create_jobs.sql")
    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement in forward.statements:
            conn.execute(statement.sql)
    psql = ["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", database_url, "-f", "-"]
    subprocess.run(psql, input=script, cwd=result.backup_folder, check=True, text=True)
    assert rows(database_url, "SELECT jobs::text FROM jobs") == before


def test_a_killed_backout_leaves_the_database_unchanged_and_a_rerun_finishes(
    project: Path, settings: Settings, target: Target
) -> None:
    path = project / "migrations/006_add_jobs_priority.sql"
    slow = path.read_text().replace("--   DROP INDEX", "--   SELECT pg_sleep(20);\n--   DROP INDEX")
    path.write_text(slow)
    command = [sys.executable, "-m", "backout", "emergency", "006", "--reason", "stalled", "--yes",
               "--use-current-rollback", "--no-git", "--no-rehearsal",
               "--database-url", target.url]  # fmt: skip
    sleeping = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'backout' AND query LIKE '%pg_sleep%'"
        " AND datname = current_database()"
    )
    process = subprocess.Popen(command, cwd=project, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(300):
            if rows(target.url, sleeping) == [(1,)]:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the rollback never started: {process.communicate()[1]}")
    finally:
        process.kill()  # SIGKILL: no cleanup of any kind runs
        process.wait()

    assert rows(target.url, PRIORITY_COLUMNS) == [(1,)]
    assert rows(target.url, "SELECT count(*) FROM schema_migrations") == [(6,)]
    (postmortem,) = settings.postmortems.glob("INC-*.md")
    assert "rolling back 006_add_jobs_priority" in postmortem.read_text()
    path.write_text(slow.replace("--   SELECT pg_sleep(20);\n", ""))

    result = run(settings, target, use_current_rollback=True)  # the server let go of the locks

    assert result.postmortem == postmortem
    assert rows(target.url, PRIORITY_COLUMNS) == [(0,)]


def test_an_incident_id_used_on_another_branch_is_never_reused(
    project: Path, settings: Settings, target: Target
) -> None:
    day = datetime.now(UTC).strftime("%Y%m%d")
    git(project, "branch", f"incident/INC-{day}-01")
    git(project, "branch", "elsewhere")
    git(project, "checkout", "--quiet", "elsewhere")
    (project / "ops/postmortems").mkdir(parents=True)
    (project / f"ops/postmortems/INC-{day}-02-other.md").write_text("---\nid: x\n---\n")
    git(project, "add", "ops")
    git(project, "commit", "--quiet", "-m", "an incident on another branch")
    (project / f"ops/postmortems/INC-{day}-02-other.md").unlink()
    git(project, "checkout", "--quiet", "-")  # back: the folder no longer holds -02

    result = run(settings, target)

    assert result.incident_id == f"INC-{day}-03"


def test_after_an_emergency_a_plain_apply_runs_the_written_fix_forward_and_skips_the_original(
    project: Path, settings: Settings, target: Target
) -> None:
    result = run(settings, target)
    assert result.fix_forward is not None
    written = [
        line for line in result.fix_forward.read_text().splitlines() if "BACKOUT-STUB" not in line
    ]
    fix = "ALTER TABLE jobs ADD COLUMN priority smallint NOT NULL DEFAULT 0;"
    result.fix_forward.write_text("\n".join([*written[:12], fix, *written[12:]]) + "\n")

    outcome = apply(settings, target, ME)

    assert outcome.done == ["007_fix_add_jobs_priority"]
    assert outcome.plan.warnings == (
        "skipped 006_add_jobs_priority: rolled back (emergency, "
        f"{result.rolled_back_at:%Y-%m-%d %H:%M} UTC) and not re-applied silently; "
        "pass --reapply 006 to run it again",
    )
    assert rows(target.url, PRIORITY_COLUMNS) == [(1,)]
    states = {s.name: s.state.value for s in status(settings, target)}
    assert states["006_add_jobs_priority"] == "superseded"
    assert states["007_fix_add_jobs_priority"] == "applied"
