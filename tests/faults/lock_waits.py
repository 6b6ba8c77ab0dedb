"""What the lock and wait fault tests share: the sample project, all applied, for backout run as
a process of its own; the server's view of the migration lock; reading the database back."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.database.lock import LOCK_KEY
from tests.faults.activity import PATIENCE
from tests.runner import run
from tests.samples import SAMPLES

PRIORITY = "SELECT count(*) FROM information_schema.columns WHERE column_name = 'priority'"
_HOLDER = f"""
SELECT l.pid FROM pg_locks l
 WHERE l.locktype = 'advisory' AND l.granted
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.classid = ({LOCK_KEY} >> 32)::oid AND l.objid = ({LOCK_KEY} & 4294967295)::oid
"""


def applied_project(root: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample migrations, all applied; ``DATABASE_URL`` set for the processes started."""
    shutil.copytree(SAMPLES, root / "migrations")
    (root / "backout.toml").write_text('migrations = ["migrations"]\n')
    monkeypatch.chdir(root)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS"):
        monkeypatch.delenv(name, raising=False)
    assert run("apply", "--yes").exit_code == 0
    return root


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query).fetchall()


def execute(url: str, statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statements)


def lock_holder(url: str) -> int:
    """The pid holding the migration lock (there must be exactly one)."""
    (pid,) = (row[0] for row in rows(url, _HOLDER))
    return int(pid)


def backout(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``backout ARGS`` as a process, to its end."""
    return subprocess.run(
        [sys.executable, "-m", "backout", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )


def one_error_line(stderr: str) -> str:
    """The one ``backout: error:`` line; never an internal error or a traceback."""
    lines = [line for line in stderr.splitlines() if line.startswith("backout: error:")]
    assert len(lines) == 1, stderr
    assert "internal error" not in stderr, stderr
    assert "Traceback" not in stderr, stderr
    return lines[0]


def select_is_not_blocked(url: str, table: str) -> None:
    """A plain SELECT on ``table`` runs at once (it fails the test after 5 s otherwise)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '5s'")
        conn.execute(f"SELECT count(*) FROM {table}")
