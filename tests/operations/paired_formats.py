"""What the database tests of the golang-migrate, directory and Flyway formats share: a project
made of a fixture folder (committed, for the emergency's branch) and a look at the database."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import git_commit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats"

OBJECTS = """
SELECT 'table', relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE nspname = 'public' AND relkind IN ('r', 'v') AND relname NOT LIKE 'backout\\_%'
   AND relname <> 'schema_migrations'
UNION ALL
SELECT 'index', indexname FROM pg_indexes
 WHERE schemaname = 'public' AND indexname NOT LIKE '%\\_pkey' AND tablename NOT LIKE 'backout\\_%'
   AND tablename <> 'schema_migrations'
UNION ALL
SELECT 'function', proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE nspname = 'public'
UNION ALL
SELECT 'trigger', tgname FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'column', table_name || '.' || column_name FROM information_schema.columns
 WHERE table_schema = 'public' AND table_name NOT LIKE 'backout\\_%'
   AND table_name <> 'schema_migrations'
"""


def make_project(root: Path, fixture: str, folder: str = "migrations", config: str = "") -> Path:
    """``root`` with the fixture folder ``fixture`` as its migrations folder ``folder`` and a
    ``backout.toml`` (plus ``config``), committed in a git repository."""
    shutil.copytree(FIXTURES / fixture, root / folder)
    (root / "backout.toml").write_text(f'migrations = ["{folder}"]\n{config}')
    files = {
        str(p.relative_to(root)): p.read_bytes().decode()  # Windows line ends kept
        for p in root.rglob("*")
        if p.is_file()
    }
    git_commit(root, files, "Add the migrations", at="2026-11-20T10:00:00+00:00")
    return root


def on_the_command_line(root: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``run(...)`` works in ``root`` against the database at ``url``."""
    monkeypatch.chdir(root)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS"):
        monkeypatch.delenv(name, raising=False)


def objects(url: str) -> set[tuple[str, str]]:
    """The tables, views, indexes, functions, triggers and columns the migrations made."""
    with psycopg.connect(url) as conn:
        return {(kind, name) for kind, name in conn.execute(OBJECTS).fetchall()}


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def history(url: str) -> list[tuple[str, str, str, str | None]]:
    """``(version, name, checksum, rollback_checksum)`` of every applied migration."""
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
        if exists is None or exists[0] is None:
            return []
        return conn.execute(
            "SELECT version, name, checksum, rollback_checksum FROM schema_migrations "
            "ORDER BY applied_at, version"
        ).fetchall()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def text_sha256(path: Path) -> str:
    """The checksum of a down file's text as backout reads it (Windows line ends made Unix)."""
    text = path.read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
    return hashlib.sha256(text.encode()).hexdigest()
