"""Scratch databases of killed runs: ``kill -9`` of ``backout verify`` leaves its scratch
database; the next run drops it. A scratch database whose run is alive is never dropped."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from backout.errors import ExitCode
from tests.faults.activity import PATIENCE, POLL, NeverReached, backend, kill_9, running
from tests.runner import run
from tests.sample_project import write

SLEEPING = "state = 'active' AND query LIKE '%pg_sleep%' AND datname LIKE 'backout\\_scratch\\_%'"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n')
    monkeypatch.chdir(tmp_path)
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def slow_migration(project: Path, seconds: float) -> None:
    write(
        project,
        "001_slow.sql",
        f"CREATE TABLE slow (id int);\nSELECT pg_sleep({seconds});",
        "DROP TABLE slow;",
    )


def database_of(url: str, pid: int) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT datname FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    assert row is not None
    return str(row[0])


def exists(url: str, name: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
    return row == (1,)


def unused(url: str, name: str) -> None:
    """Wait until no session uses scratch database ``name`` and no run keeps it."""
    deadline = time.monotonic() + PATIENCE
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = %s OR application_name = 'backout scratch ' || %s",
                (name, name),
            ).fetchone()
            if row == (0,):
                return
            time.sleep(POLL)
    raise NeverReached(f"sessions of the killed run still used {name}")


def test_a_killed_verify_leaves_its_scratch_database_and_the_next_run_drops_it(
    project: Path, database_url: str
) -> None:
    slow_migration(project, 1)
    args = ["verify", "--all", "--scratch-database-url", database_url]
    with running(args, project) as process:
        scratch = database_of(database_url, backend(database_url, SLEEPING, anywhere=True))
        kill_9(process)
    unused(database_url, scratch)
    assert exists(database_url, scratch)  # what the kill left
    assert scratch.startswith("backout_scratch_")

    slow_migration(project, 0)
    again = run(*args)

    assert again.exit_code == ExitCode.OK, again.stderr
    assert not exists(database_url, scratch)


def test_a_scratch_database_whose_run_is_alive_is_never_dropped(
    project: Path, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    slow_migration(project, 60)
    args = ["verify", "--all", "--scratch-database-url", database_url]
    with running(args, project) as first:
        pid = backend(database_url, SLEEPING, anywhere=True)
        scratch = database_of(database_url, pid)
        other = tmp_path_factory.mktemp("other")
        (other / "migrations").mkdir()
        (other / "backout.toml").write_text('migrations = ["migrations"]\n')
        write(other, "001_quick.sql", "CREATE TABLE quick (id int);", "DROP TABLE quick;")

        second = run("--config", str(other / "backout.toml"), *args)

        assert second.exit_code == ExitCode.OK, second.stderr
        assert first.poll() is None
        assert exists(database_url, scratch)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_cancel_backend(%s)", (pid,))  # the first run ends on its own
        first.wait(timeout=PATIENCE)

    assert first.returncode == ExitCode.PROBLEMS
    assert not exists(database_url, scratch)
