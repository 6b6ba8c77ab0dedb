"""A dry run in which a statement fails exits 1, on the command line and with ``--json``, and
says PostgreSQL's DETAIL and HINT and what to do next; nothing is changed.

Rolling back the sample 002 (``DROP TABLE events``) while 005 is applied fails: 005's
``impact_score_backfill_log`` has a foreign key to ``events``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest

from backout.errors import ExitCode
from tests.helpers import git_commit
from tests.runner import Result, run
from tests.samples import SAMPLES

DETAIL = "DETAIL: constraint impact_score_backfill_log_event_id_fkey on table "
HINT = "HINT: Use DROP ... CASCADE to drop the dependent objects too."
NEXT = "next: roll back the later migrations that depend on it first (`backout status` shows them)"
UNCHANGED = (
    "SELECT to_regclass('events') IS NOT NULL, to_regclass('markets') IS NOT NULL, "
    "(SELECT count(*) FROM schema_migrations), "
    "(SELECT count(*) FROM backout_audit_event WHERE action IN ('rollback', 'emergency'))"
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    shutil.copytree(SAMPLES, tmp_path / "migrations")
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n')
    files = {str(p.relative_to(tmp_path)): p.read_text() for p in tmp_path.rglob("*.*")}
    git_commit(tmp_path, files, "Add the migrations", at="2026-11-20T10:00:00+00:00")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS"):
        monkeypatch.delenv(name, raising=False)
    assert run("apply", "--yes").exit_code == 0
    return tmp_path


def _unchanged(database_url: str) -> tuple[bool, bool, int, int]:
    """Whether events and markets exist, the history rows, the rollback audit rows."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(UNCHANGED).fetchone()
    assert row is not None
    return (bool(row[0]), bool(row[1]), int(row[2]), int(row[3]))


def _explains(result: Result) -> None:
    assert result.exit_code == ExitCode.FAILED, result.stderr
    assert "cannot drop table events because other objects depend on it" in result.stdout
    assert DETAIL in result.stdout
    assert HINT in result.stdout
    assert NEXT in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stdout + result.stderr


def test_a_failing_rollback_dry_run_exits_1_with_detail_hint_and_next(
    project: Path, database_url: str
) -> None:
    before = _unchanged(database_url)

    result = run("rollback", "002", "--dry-run", "--yes")

    _explains(result)
    assert "Dry run FAILED: 2 of 3 statements failed" in result.stdout
    assert result.stdout.count("line ") >= 3  # every statement is still listed
    assert _unchanged(database_url) == before


def test_a_failing_rollback_dry_run_in_json_says_it_failed(
    project: Path, database_url: str
) -> None:
    before = _unchanged(database_url)

    result = run("rollback", "002", "--dry-run", "--yes", "--json")

    assert result.exit_code == ExitCode.FAILED, result.stderr
    out = json.loads(result.stdout)
    assert out["failed"] is True
    assert len(out["done"]) == 3
    assert DETAIL in out["done"][0]
    assert _unchanged(database_url) == before


def test_a_passing_rollback_dry_run_still_exits_0(project: Path, database_url: str) -> None:
    result = run("rollback", "006", "--dry-run", "--yes", "--json")

    assert result.exit_code == ExitCode.OK, result.stderr
    assert json.loads(result.stdout)["failed"] is False


def test_a_failing_emergency_dry_run_exits_1_with_detail_hint_and_next(
    project: Path, database_url: str
) -> None:
    before = _unchanged(database_url)

    result = run("emergency", "002", "--reason", "broken", "--dry-run", "--no-rehearsal")

    _explains(result)
    assert "Dry run FAILED: 2 of 3 statements failed" in result.stdout
    assert _unchanged(database_url) == before
    assert not (project / "ops").exists()


def test_a_failing_emergency_dry_run_in_json_says_it_failed(
    project: Path, database_url: str
) -> None:
    before = _unchanged(database_url)

    result = run("emergency", "002", "--reason", "broken", "--dry-run", "--no-rehearsal", "--json")

    assert result.exit_code == ExitCode.FAILED, result.stderr
    out = json.loads(result.stdout)
    assert out["rollback"]["failed"] is True
    assert DETAIL in out["rollback"]["rehearsal"][0]
    assert _unchanged(database_url) == before


def test_a_real_rollback_failure_is_one_line_with_detail_hint_and_next(
    project: Path, database_url: str
) -> None:
    before = _unchanged(database_url)
    dynamic = project / "dynamic_rollback.sql"  # dynamic SQL: no blast radius predicts its failure
    dynamic.write_text("DO $$ BEGIN EXECUTE 'DROP TABLE events'; END $$;\n")

    result = run(
        "rollback", "002", "--yes", "--skip-rehearsal", "test", "--rollback-file", str(dynamic)
    )

    assert result.exit_code == ExitCode.FAILED, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("backout: error: 002_create_core_schema line ")
    assert DETAIL in error
    assert HINT in error
    assert "nothing was changed" in error
    assert NEXT in error
    after = _unchanged(database_url)
    assert after[:3] == before[:3]
    assert after[3] == before[3] + 1  # the failure is audited
