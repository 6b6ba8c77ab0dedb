"""The round trip with the real tools from npm: the tool's ``up``, ``backout emergency``, then
the tool's own ``status`` shows the migration pending and its ``up`` applies it again.
Skipped, with the reason, where npm is missing (see tests/database/histories/npm_tools.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.database.histories.npm_tools import (  # noqa: F401  (fixtures)
    Tool,
    dbmate,
    node_pg_migrate,
    npm_tools,
)
from tests.database.histories.test_dbmate import EMAIL as DBMATE_EMAIL
from tests.database.histories.test_dbmate import USERS as DBMATE_USERS
from tests.database.histories.test_node_pg_migrate import EMAIL, FILES, USERS
from tests.runner import run
from tests.sample_project import rows

EMAIL_COLUMN = (
    "SELECT count(*) FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'email'"
)


def _emergency(root: Path, monkeypatch: pytest.MonkeyPatch, url: str, migration: str) -> None:
    monkeypatch.chdir(root)
    monkeypatch.setenv("DATABASE_URL", url)
    result = run("emergency", migration, "--reason", "emails broke", "--yes", "--no-git")
    assert result.exit_code == 0, result.stderr


def test_dbmate_up_backout_emergency_dbmate_status_and_up(
    dbmate: Tool,  # noqa: F811
    tmp_path: Path,
    database_url: str,
    conn: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "db" / "migrations"
    folder.mkdir(parents=True)
    (folder / "20240101120000_create_users.sql").write_text(DBMATE_USERS)
    (folder / "20240102120000_add_email.sql").write_text(DBMATE_EMAIL)
    (tmp_path / "backout.toml").write_text('migrations = ["db/migrations"]\n')
    dbmate("--no-dump-schema", "up", cwd=tmp_path)

    _emergency(tmp_path, monkeypatch, database_url, "20240102120000")

    assert rows(conn, EMAIL_COLUMN) == [(0,)]
    assert rows(conn, "SELECT version FROM schema_migrations") == [("20240101120000",)]
    status = dbmate("status", cwd=tmp_path, check=False)
    assert "[ ] 20240102120000_add_email.sql" in status.stdout
    dbmate("--no-dump-schema", "up", cwd=tmp_path)
    assert rows(conn, EMAIL_COLUMN) == [(1,)]


def test_node_pg_migrate_up_backout_emergency_and_up_again(
    node_pg_migrate: Tool,  # noqa: F811
    tmp_path: Path,
    database_url: str,
    conn: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "migrations").mkdir()
    for name in (USERS, EMAIL):
        (tmp_path / "migrations" / f"{name}.sql").write_text(FILES[name])
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n')
    node_pg_migrate("up", cwd=tmp_path)

    _emergency(tmp_path, monkeypatch, database_url, EMAIL)

    assert rows(conn, EMAIL_COLUMN) == [(0,)]
    assert rows(conn, "SELECT name FROM pgmigrations") == [(USERS,)]
    dry = node_pg_migrate("up", "--dry-run", cwd=tmp_path)
    assert f"> Migrating files:\n> - {EMAIL}\n" in dry.stdout
    node_pg_migrate("up", cwd=tmp_path)
    assert rows(conn, EMAIL_COLUMN) == [(1,)]
