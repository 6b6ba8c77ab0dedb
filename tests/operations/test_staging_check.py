"""``backout check``: the staging checklist on a real database; probes are always rolled back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest

from backout.errors import ExitCode
from tests.runner import run
from tests.samples import SAMPLES

KEY_QUERIES = """
[[key_queries]]
name = "claim next job"
sql = "SELECT id FROM jobs WHERE status = 'queued' ORDER BY priority DESC, run_after LIMIT 1"
budget_ms = 500

[[key_queries]]
name = "impossible budget"
sql = "SELECT count(*) FROM generate_series(1, 300000)"
budget_ms = 0.001
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    shutil.copytree(SAMPLES, tmp_path / "migrations")
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n' + KEY_QUERIES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS"):
        monkeypatch.delenv(name, raising=False)
    assert run("apply", "--yes").exit_code == 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO jobs (kind, payload, priority) VALUES ('payout', '{}', 5)")
    return tmp_path


def items(result_stdout: str) -> dict[str, tuple[str, str]]:
    data = json.loads(result_stdout)
    return {i["check"]: (i["status"], i["evidence"]) for i in data["items"]}


def test_probes_fire_and_the_key_queries_are_timed(project: Path, database_url: str) -> None:
    result = run("check", "006", "--json")

    checks = items(result.stdout)
    assert result.exit_code == ExitCode.PROBLEMS  # the impossible budget
    constraint = checks[
        "constraint jobs_priority_range on jobs exists, is validated and rejects a violation"
    ]
    assert constraint == ("ok", "a probe (priority = -32768) was rejected")
    assert checks["column jobs.priority is NOT NULL and rejects a NULL"][0] == "ok"
    assert checks["index idx_jobs_claimable_priority exists and is valid"] == ("ok", "")
    assert checks["key query 'claim next job' within 500 ms"][0] == "ok"
    assert checks["key query 'impossible budget' within 0.001 ms"][0] == "failed"
    assert checks["rollback rehearsed on a scratch database"] == ("ok", "ok")
    with psycopg.connect(database_url) as conn:  # the probes changed nothing
        assert conn.execute("SELECT kind, priority FROM jobs").fetchall() == [("payout", 5)]


def test_an_invalid_index_a_disabled_trigger_and_a_missing_apply_fail(
    project: Path, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE pg_index SET indisvalid = false"
            " WHERE indexrelid = 'idx_jobs_claimable_priority'::regclass"
        )
        conn.execute("ALTER TABLE jobs DISABLE TRIGGER trg_jobs_updated_at")
        conn.execute("DELETE FROM schema_migrations WHERE version = '003'")

    index = items(run("check", "006", "--json").stdout)
    trigger = items(run("check", "001", "--json").stdout)
    missing = run("check", "003")

    assert index["index idx_jobs_claimable_priority exists and is valid"][0] == "failed"
    assert trigger["trigger trg_jobs_updated_at on jobs exists and is enabled"] == (
        "failed",
        "it is disabled",
    )
    assert missing.exit_code == ExitCode.PROBLEMS
    assert "- [ ] **FAILED** 003_add_markets_index is applied (no history row" in missing.stdout


def test_breaking_changes_are_listed_for_a_person(project: Path) -> None:
    (project / "migrations/007_drop_headline.sql").write_text(
        "-- Migration: 007_drop_headline.sql\n-- Purpose: t\n-- Phase: 1\n-- Checklist: 1\n\n"
        "ALTER TABLE events DROP COLUMN headline;\nALTER TABLE markets ALTER COLUMN title TYPE "
        "varchar(500);\n\n-- ROLLBACK\n-- To rollback this migration:\n"
        "--   ALTER TABLE markets ALTER COLUMN title TYPE text;\n"
        "--   ALTER TABLE events ADD COLUMN headline text;\n"
    )
    assert run("apply", "--yes").exit_code == 0

    checks = items(run("check", "007", "--json").stdout)

    assert checks["breaking change: column public.events.headline is removed (or renamed)"][0] == (
        "needs a person"
    )
    assert checks["breaking change: column public.markets.title changes type"] == (
        "needs a person",
        "text -> character varying(500)",
    )
