"""``apply`` refuses what cannot be right, before anything runs (failure 8 of issue 10).

An empty, whitespace-only or comments-only forward section, a file name lint rejects, a
rollback section that does not parse: refused with exit 2 and one line naming the file, with
nothing applied (not even the migrations before it). A missing rollback stays lint's business.
Each test checks the database itself: the tables, the history table, the audit table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.errors import ExitCode, MalformedMigrationError
from backout.operations.apply import apply
from tests.runner import run
from tests.sample_project import ME, write

HEADER = "-- Migration: {name}\n-- Purpose: p\n-- Phase: 1\n-- Checklist: c\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n')
    write(
        tmp_path,
        "001_create_t.sql",
        "CREATE TABLE t (id int PRIMARY KEY);",
        "DROP TABLE t;\nWARNING: this deletes every row of t; back up t first.",
    )
    return tmp_path


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project, environ={})


def one(url: str, query: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def nothing_ran(url: str) -> bool:
    """No table made, no history table, no audit table: the database as it was."""
    return bool(
        one(
            url,
            "SELECT to_regclass('t') IS NULL AND to_regclass('schema_migrations') IS NULL "
            "AND to_regclass('backout_audit_event') IS NULL",
        )
    )


EMPTY_FORWARD = {
    "0 bytes": "",
    "whitespace": "  \n\t\n   \n",
    "comments only": HEADER.format(name="002_nothing.sql") + "\n-- TODO: write it\n",
    "block comment only": "/* nothing\n   yet */\n",
    "rollback only": HEADER.format(name="002_nothing.sql")
    + "\n-- ROLLBACK\n--   DROP TABLE u;\n-- WARNING: deletes u. Back up u first.\n",
    "a wrapper around nothing": "BEGIN;\nCOMMIT;\n-- ROLLBACK\n-- Irreversible: nothing to undo.\n",
}


@pytest.mark.parametrize("text", EMPTY_FORWARD.values(), ids=EMPTY_FORWARD.keys())
def test_an_empty_forward_section_is_refused_before_anything_runs(
    project: Path, settings: Settings, database_url: str, text: str
) -> None:
    (project / "migrations/002_nothing.sql").write_text(text)

    with pytest.raises(MalformedMigrationError, match=r"002_nothing.sql:1: forward-empty: no SQL"):
        apply(settings, Target(database_url), ME)

    assert nothing_ran(database_url)


BAD_NAMES = ["2_add_u.sql", "002_Add_U.sql", "002-add-u.sql", "002_add u.sql", "add_u.sql"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_file_name_lint_rejects_is_refused_before_anything_runs(
    project: Path, settings: Settings, database_url: str, name: str
) -> None:
    write(project, name, "CREATE TABLE u (id int);", "DROP TABLE u;\nWARNING: back up u.")

    with pytest.raises(MalformedMigrationError, match=rf"{name}:1: name-format: {name} does not"):
        apply(settings, Target(database_url), ME)

    assert nothing_ran(database_url)


UNPARSEABLE_ROLLBACK = {
    "syntax": ("DROP TABEL u;", 12, "rollback-unparseable"),
    "unterminated": ("DROP TABLE u\n", 12, "rollback-unterminated"),
    "meta-command": ("\\i undo.sql", 12, "psql-meta-command"),
    "transaction control": ("DROP TABLE u;\nCOMMIT;", 13, "transaction-control"),
}


@pytest.mark.parametrize(
    ("section", "line", "rule"), UNPARSEABLE_ROLLBACK.values(), ids=UNPARSEABLE_ROLLBACK.keys()
)
def test_a_rollback_section_that_does_not_parse_is_refused_before_anything_runs(
    project: Path, settings: Settings, database_url: str, section: str, line: int, rule: str
) -> None:
    write(project, "002_add_u.sql", "CREATE TABLE u (id int);", section + "\nWARNING: back up u.")

    with pytest.raises(MalformedMigrationError, match=rf"002_add_u.sql:{line}: {rule}: "):
        apply(settings, Target(database_url), ME)

    assert nothing_ran(database_url)


def test_a_sibling_rollback_file_that_does_not_parse_is_named(
    project: Path, settings: Settings, database_url: str
) -> None:
    (project / "migrations/002_add_u.sql").write_text("CREATE TABLE u (id int);\n")
    (project / "migrations/002_add_u.rollback.sql").write_text("DROP TABLE u;\nDROP TABEL v;\n")

    with pytest.raises(MalformedMigrationError, match=r"002_add_u.rollback.sql:2: sql-syntax: "):
        apply(settings, Target(database_url), ME)

    assert nothing_ran(database_url)


def test_a_missing_rollback_stays_a_lint_error_and_is_applied(
    project: Path, settings: Settings, database_url: str
) -> None:
    (project / "migrations/002_add_u.sql").write_text("CREATE TABLE u (id int);\n")

    apply(settings, Target(database_url), ME)

    assert (
        one(database_url, "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations")
        == "001,002"
    )


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("002_nothing.sql", "   \n", "002_nothing.sql:1: forward-empty: "),
        ("2_add_u.sql", "CREATE TABLE u (id int);\n", "2_add_u.sql:1: name-format: "),
        (
            "002_add_u.sql",
            "CREATE TABLE u (id int);\n-- ROLLBACK\n--   DROP TABEL u;\n",
            "002_add_u.sql:3: rollback-unparseable: ",
        ),
    ],
    ids=["empty", "bad name", "rollback does not parse"],
)
def test_on_the_command_line_apply_exits_2_with_one_line_naming_the_file(
    project: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    text: str,
    said: str,
) -> None:
    monkeypatch.chdir(project)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    (project / "migrations" / name).write_text(text)

    result = run("apply", "--yes")

    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("backout: error: ")
    assert f"migrations/{said}" in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""
    assert nothing_ran(database_url)
