"""Smoke checks after apply and rollback: in the output, the audit trail and the exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest

from backout.errors import ExitCode
from tests.runner import run
from tests.samples import SAMPLES

CHECKS = """
[[smoke_checks]]
name = "jobs table answers"
sql = "SELECT count(*) >= 0 FROM jobs"

[[smoke_checks]]
name = "priority column present"
sql = "SELECT count(*) = 1 FROM information_schema.columns WHERE column_name = 'priority'"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    shutil.copytree(SAMPLES, tmp_path / "migrations")
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n' + CHECKS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_smoke_checks_run_after_apply_and_rollback_and_are_audited(
    project: Path, database_url: str
) -> None:
    applied = run("apply", "--yes")
    rolled_back = run("rollback", "006", "--yes", "--json")

    assert applied.exit_code == 0
    assert "smoke check 'jobs table answers': ok (returned True)" in applied.stdout
    assert "smoke check 'priority column present': ok (returned True)" in applied.stdout
    assert rolled_back.exit_code == ExitCode.PROBLEMS  # the priority column is gone now
    checks = json.loads(rolled_back.stdout)["smoke_checks"]
    assert [(c["name"], c["ok"]) for c in checks] == [
        ("jobs table answers", True),
        ("priority column present", False),
    ]
    with psycopg.connect(database_url) as conn:
        audited = conn.execute(
            "SELECT outcome, details->>'after' FROM backout_audit_event"
            " WHERE action = 'smoke_check' ORDER BY id"
        ).fetchall()
    assert audited == [("success", "apply"), ("failure", "rollback")]


def test_a_broken_smoke_check_is_a_failed_result_not_a_crash(project: Path) -> None:
    (project / "backout.toml").write_text(
        'migrations = ["migrations"]\n[[smoke_checks]]\nname = "typo"\nsql = "SELEC 1"\n'
    )

    result = run("apply", "--yes")

    assert result.exit_code == ExitCode.PROBLEMS
    assert "smoke check 'typo': FAILED (syntax error at or near" in result.stdout
