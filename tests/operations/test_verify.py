"""``backout verify``: rollbacks rehearsed on a real scratch database, schemas compared."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.fingerprint import fingerprint
from backout.errors import ExitCode
from backout.migrations.catalog import project_catalog
from backout.operations.verify import verify
from tests.runner import run
from tests.samples import SAMPLES

BANNER = "-- " + "=" * 76


def migration(name: str, forward: str, rollback: list[str], notes: str = "") -> str:
    lines = [
        f"-- Migration: {name}",
        "-- Purpose: test",
        "-- Phase: 1",
        "-- Checklist: 1.1",
        "",
        forward,
        "",
        BANNER,
        "-- ROLLBACK",
        BANNER,
        "-- To rollback this migration:",
    ]
    lines += [f"--   {line}" for line in rollback]
    if notes:
        lines += ["--", f"-- {notes}"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(SAMPLES, tmp_path / "migrations")
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n')
    return tmp_path


def settings_of(project: Path) -> Settings:
    return load_settings(project, environ={})


def rehearse(project: Path, url: str) -> dict[str, tuple[str, list[str]]]:
    settings = settings_of(project)
    with psycopg.connect(url, autocommit=True) as conn:
        report = verify(settings, conn, project_catalog(settings).entries)
    return {v.migration: (v.outcome, v.problems()) for v in report.verdicts}


def test_the_sample_migrations_all_verify(project: Path, database_url: str) -> None:
    verdicts = rehearse(project, database_url)

    assert verdicts == {name: ("ok", []) for name in verdicts}
    assert len(verdicts) == 6


def test_a_rollback_that_forgets_an_index_a_trigger_and_a_function_is_named(
    project: Path, database_url: str
) -> None:
    (project / "migrations/007_add_audit.sql").write_text(
        migration(
            "007_add_audit.sql",
            "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; "
            "END $$;\nCREATE TRIGGER trg_touch BEFORE UPDATE ON markets FOR EACH ROW EXECUTE "
            "FUNCTION touch();\nCREATE INDEX idx_markets_title ON markets (title);\n"
            "ALTER TABLE markets ADD COLUMN note text;",
            ["ALTER TABLE markets DROP COLUMN note;"],
        )
    )

    outcome, problems = rehearse(project, database_url)["007_add_audit"]

    assert outcome == "failed"
    assert problems == [
        "rollback left: function public.touch() added",
        "rollback left: index public.idx_markets_title added",
        "rollback left: trigger public.markets.trg_touch added",
        'apply again failed at line 6: function "touch" already exists with same argument '
        "types (SQLSTATE 42723)",
    ]


def test_a_rollback_that_fails_mid_way_is_reported_with_its_line(
    project: Path, database_url: str
) -> None:
    (project / "migrations/007_add_note.sql").write_text(
        migration(
            "007_add_note.sql",
            "ALTER TABLE markets ADD COLUMN note text;",
            ["ALTER TABLE markets DROP COLUMN note;", "DROP TABLE no_such_table;"],
        )
    )

    outcome, problems = rehearse(project, database_url)["007_add_note"]

    assert outcome == "failed"
    assert problems == [
        'rollback failed at line 13: table "no_such_table" does not exist (SQLSTATE 42P01)'
    ]


def test_a_documented_irreversible_rollback_is_reported_as_such(
    project: Path, database_url: str
) -> None:
    (project / "migrations/007_add_status.sql").write_text(
        migration(
            "007_add_status.sql",
            "CREATE TYPE market_mood AS ENUM ('calm');\nALTER TYPE market_mood ADD VALUE 'wild';",
            [],
            notes="Irreversible: PostgreSQL cannot drop an enum value.",
        )
    )

    assert rehearse(project, database_url)["007_add_status"] == ("irreversible", [])


def test_fingerprints_leave_backouts_own_tables_out(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        empty = fingerprint(conn, ignore_tables={"schema_migrations"})
        conn.execute("CREATE TABLE schema_migrations (version text PRIMARY KEY)")
        conn.execute("CREATE TABLE widgets (id int)")
        after = fingerprint(conn, ignore_tables={"schema_migrations"})

    assert [c.describe() for c in empty.diff(after)] == [
        "column public.widgets.id added",
        "table public.widgets added",
    ]


def test_verify_on_the_command_line_creates_and_drops_its_scratch_database(
    project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "migrations/007_add_note.sql").write_text(
        migration("007_add_note.sql", "CREATE INDEX idx_note ON markets (slug);", [])
    )
    monkeypatch.chdir(project)
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS"):
        monkeypatch.delenv(name, raising=False)

    result = run("verify", "003", "007", "--scratch-database-url", database_url, "--json")

    assert result.exit_code == ExitCode.PROBLEMS
    verdicts = {m["name"]: m for m in json.loads(result.stdout)["migrations"]}
    assert list(verdicts) == [
        "001_create_jobs",
        "002_create_core_schema",
        "003_add_markets_index",
        "004_alter_events_add_impact_score",
        "005_backfill_events_impact_score",
        "006_add_jobs_priority",
        "007_add_note",
    ]
    assert verdicts["007_add_note"]["error"] == "no rollback SQL is documented"
    with psycopg.connect(database_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'backout_scratch_%'"
        ).fetchone()
    assert left == (0,)


def test_production_apply_is_gated_by_a_rehearsal_unless_skipped_with_a_reason(
    project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "backout.toml").write_text(
        'migrations = ["migrations"]\n'
        '[environments.production]\nurl_env = "PROD_URL"\nrequire_approval = true\n'
    )
    (project / "migrations/007_add_note.sql").write_text(
        migration(
            "007_add_note.sql",
            "ALTER TABLE markets ADD COLUMN note text;\nCREATE INDEX idx_note ON markets (title);",
            ["ALTER TABLE markets DROP COLUMN IF EXISTS note;", "DROP INDEX IF EXISTS idx_nope;"],
        )
    )
    monkeypatch.chdir(project)
    monkeypatch.setenv("PROD_URL", database_url)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS"):
        monkeypatch.delenv(name, raising=False)
    approved = ["--env", "production", "--yes", "--approved-by", "lead", "--reason", "r"]
    assert run("apply", "--to", "006", *approved).exit_code == 0

    refused = run("apply", *approved)
    skipped = run("apply", *approved, "--skip-rehearsal", "hotfix, rehearsed by hand")

    assert refused.exit_code == ExitCode.REFUSED
    assert "the rehearsal of 007_add_note on a scratch database failed" in refused.stderr
    assert skipped.exit_code == 0, skipped.stderr
    with psycopg.connect(database_url) as conn:
        rehearsals = conn.execute(
            "SELECT details->>'rehearsal' FROM backout_audit_event"
            " WHERE action = 'approval' ORDER BY id"
        ).fetchall()
    assert rehearsals == [("passed",), ("skipped: hotfix, rehearsed by hand",)]


def test_a_rollback_says_whether_the_schema_came_back(
    project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "migrations/007_add_note.sql").write_text(
        migration(
            "007_add_note.sql",
            "ALTER TABLE markets ADD COLUMN note text;\nCREATE INDEX idx_title ON markets (title);",
            ["ALTER TABLE markets DROP COLUMN IF EXISTS note;"],
        )
    )
    monkeypatch.chdir(project)
    monkeypatch.setenv("DATABASE_URL", database_url)
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS"):
        monkeypatch.delenv(name, raising=False)
    assert run("apply", "--yes").exit_code == 0

    rolled_back = run("rollback", "007", "--yes", "--json")  # leaves idx_title behind
    assert run("apply", "--yes", "--reapply", "007").exit_code == 1  # idx_title exists

    assert rolled_back.exit_code == 0
    check = json.loads(rolled_back.stdout)["schema_check"]
    assert check.startswith("the schema differs from what it was before 007_add_note")
    with psycopg.connect(database_url) as conn:
        recorded = conn.execute("SELECT count(schema_before) FROM schema_migrations").fetchone()
    assert recorded == (6,)
