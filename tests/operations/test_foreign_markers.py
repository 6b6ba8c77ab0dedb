"""Never apply a down section (item 2 of issue 11): a goose, dbmate, sql-migrate or
node-pg-migrate file in a folder read in the strategy format is refused by ``apply``,
``rollback`` and ``emergency`` (exit 2, one line naming the marker and the config key), and the
database is left as it was. Read as strategy, such a file's down section would run as part of
the migration (its markers are plain comments to the strategy format).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.errors import ExitCode
from backout.migrations.formats.strategy import entry_of
from tests.helpers import git_commit
from tests.runner import run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats"
STRATEGY_FILE = """-- Migration: 001_create_t.sql
-- Purpose: p
-- Phase: 1
-- Checklist: c

CREATE TABLE t (id int PRIMARY KEY);

-- ROLLBACK
--   DROP TABLE t;
-- WARNING: this deletes every row of t; back up t first.
"""
# (tool, a migration of its fixture folder, its first marker, its line, the table it creates)
FOREIGN = [
    ("goose", "goose/migrations/00001_create_accounts.sql", "-- +goose Up", 4, "accounts"),
    ("sql-migrate", "sql-migrate/migrations/1_create_authors.sql", "-- +migrate Up", 3, "authors"),
    (
        "dbmate",
        "dbmate/migrations/20240301100000_create_customers.sql",
        "-- migrate:up",
        1,
        "customers",
    ),
    (
        "node-pg-migrate",
        "node-pg-migrate/migrations/1715000000000_create-users.sql",
        "-- Up Migration",
        1,
        "users",
    ),
]
NAME = "002_create_things.sql"


def snapshot(url: str) -> dict[str, Any]:
    """What the tests compare: tables, history rows and audit rows."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' ORDER BY table_name"
        ).fetchall()
        found = {"tables": [t for (t,) in tables]}
        if ("schema_migrations",) in tables:
            found["history"] = conn.execute(
                "SELECT version, name FROM schema_migrations ORDER BY version"
            ).fetchall()
        if ("backout_audit_event",) in tables:
            found["audit"] = conn.execute(
                "SELECT action, outcome, migration FROM backout_audit_event ORDER BY id"
            ).fetchall()
    return found


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    (tmp_path / "migrations").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def configure(root: Path, fmt: str) -> None:
    """``format = fmt`` for the folder, committed with the migrations (emergency records in git)."""
    (root / "backout.toml").write_text(f'migrations = ["migrations"]\nformat = "{fmt}"\n')
    files = {
        str(p.relative_to(root)): p.read_text()
        for p in [root / "backout.toml", *(root / "migrations").iterdir()]
    }
    git_commit(root, files, f"Read the migrations as {fmt}", at="2026-11-20T10:00:00+00:00")


def refusal(marker: str, line: int, tool: str) -> str:
    return (
        f"/migrations/{NAME}:{line}: format-mismatch: `{marker}` is a {tool} "
        "marker, but this folder is read as strategy: its down section would run as part of "
        f'the migration; set format = "{tool}" for this folder in [tool.backout]'
    )


@pytest.mark.parametrize(("tool", "source", "marker", "line", "table"), FOREIGN)
def test_read_as_strategy_a_foreign_file_names_its_marker(
    tool: str, source: str, marker: str, line: int, table: str
) -> None:
    m = entry_of(FIXTURES / source, FIXTURES / source).read()

    first = next(p for p in m.problems if p.code == "format-mismatch")
    assert (first.line, first.message.split("`")[1]) == (line, marker)
    assert f'set format = "{tool}"' in first.message


@pytest.mark.parametrize(("tool", "source", "marker", "line", "table"), FOREIGN)
def test_apply_refuses_a_foreign_file_before_anything_runs(
    cli: Path, database_url: str, tool: str, source: str, marker: str, line: int, table: str
) -> None:
    (cli / "migrations/001_create_t.sql").write_text(STRATEGY_FILE)
    (cli / "migrations" / NAME).write_bytes((FIXTURES / source).read_bytes())
    configure(cli, "strategy")
    before = snapshot(database_url)

    result = run("apply", "--yes")

    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("backout: error: ")
    assert refusal(marker, line, tool) in result.stderr
    assert result.stderr.count("\n") == 1
    assert snapshot(database_url) == before == {"tables": []}


@pytest.mark.parametrize(
    "command",
    [
        ("rollback", "002", "--yes"),
        ("rollback", "002", "--dry-run"),
        ("emergency", "002", "--reason", "r", "--yes", "--no-rehearsal"),
        ("emergency", "002", "--reason", "r", "--dry-run", "--no-rehearsal"),
    ],
    ids=["rollback", "rollback-dry-run", "emergency", "emergency-dry-run"],
)
@pytest.mark.parametrize(("tool", "source", "marker", "line", "table"), FOREIGN)
def test_rollback_and_emergency_refuse_a_foreign_file_and_change_nothing(
    cli: Path,
    database_url: str,
    tool: str,
    source: str,
    marker: str,
    line: int,
    table: str,
    command: tuple[str, ...],
) -> None:
    (cli / "migrations" / NAME).write_bytes((FIXTURES / source).read_bytes())
    configure(cli, tool)
    assert run("apply", "--yes").exit_code == 0
    configure(cli, "strategy")  # the folder is now misconfigured
    before = snapshot(database_url)
    assert table in before["tables"]
    assert before["history"] == [("002", "002_create_things")]

    result = run(*command)

    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("backout: error: ")
    assert refusal(marker, line, tool) in result.stderr
    assert result.stderr.count("\n") == 1
    assert snapshot(database_url) == before
    assert not (cli / "ops").exists()
