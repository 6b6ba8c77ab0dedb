"""The backup behind a session holding ``ACCESS EXCLUSIVE``: planning and copying give up after
``lock_timeout``, are taken again once the session lets go, or fail naming it (exit 5) with no
manifest written. The blocker is a real session; it lets go from the retry's pause."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.database.waits import BlockedError, RunOptions, Waits
from backout.errors import ExitCode
from backout.migrations.statements import split
from backout.operations.backup import plan_backup, write_backup

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
QUICK = RunOptions(lock_timeout=0.2, lock_retries=2, backoff=0.01)
SCHEMA = """
CREATE TABLE jobs (id bigserial PRIMARY KEY, kind text NOT NULL);
CREATE TABLE job_runs (id serial PRIMARY KEY, job_id bigint REFERENCES jobs (id), ok boolean);
INSERT INTO jobs (kind) VALUES ('payout'), ('digest');
INSERT INTO job_runs (job_id, ok) VALUES (1, true), (2, NULL), (2, false);
"""
TRUNCATE = split("TRUNCATE jobs CASCADE;")  # backs up jobs, then job_runs


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        yield conn


@pytest.fixture
def blocker(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A session that holds ``job_runs`` in ACCESS EXCLUSIVE mode until it rolls back."""
    with psycopg.connect(database_url, application_name="vacuum full") as session:
        session.execute("LOCK TABLE job_runs IN ACCESS EXCLUSIVE MODE")
        yield session


def releasing(blocker: psycopg.Connection[Any]) -> Waits:
    """Waits whose first pause ends the blocker's transaction, as its end would in real life."""
    return Waits(QUICK, sleep=lambda _: blocker.rollback())


def test_planning_behind_an_exclusive_lock_is_retried_once_it_is_released(
    conn: psycopg.Connection[Any], blocker: psycopg.Connection[Any]
) -> None:
    progress: list[str] = []
    waits = releasing(blocker)
    waits.report = progress.append

    plan = plan_backup(conn, TRUNCATE, waits)

    assert [item.table for item in plan.items] == ["public.jobs", "public.job_runs"]
    assert len(progress) == 1
    assert "the backup: lock timeout (0.2 s), blocked by" in progress[0]
    assert f"pid {blocker.info.backend_pid}" in progress[0]


def test_a_copy_behind_an_exclusive_lock_starts_over_once_it_is_released(
    database_url: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    plan = plan_backup(conn, TRUNCATE)
    folder = tmp_path / "b"
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE job_runs IN ACCESS EXCLUSIVE MODE")  # jobs copies, runs wait

        manifest = write_backup(conn, plan, folder, now=NOW, waits=releasing(blocker))

    assert [(i.table, i.rows) for i in manifest.items] == [
        ("public.jobs", 2),
        ("public.job_runs", 3),
    ]
    expected = {i.file for i in manifest.items} | {"SHA256SUMS", "RESTORE.md", "manifest.json"}
    assert {p.name for p in folder.iterdir()} == expected  # nothing of the abandoned attempt
    for item in manifest.items:
        assert hashlib.sha256((folder / item.file).read_bytes()).hexdigest() == item.sha256
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_backup_blocked_every_time_fails_naming_the_blocker_and_writes_no_manifest(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    plan = plan_backup(conn, TRUNCATE)
    folder = tmp_path / "b"
    with psycopg.connect(conn.info.dsn, application_name="vacuum full") as blocker:
        blocker.execute("LOCK TABLE job_runs IN ACCESS EXCLUSIVE MODE")

        with pytest.raises(BlockedError) as caught:
            write_backup(conn, plan, folder, now=NOW, waits=Waits(QUICK, sleep=lambda _: None))

        assert caught.value.exit_code == ExitCode.LOCKED
        assert str(caught.value).startswith("the backup: could not get its table locks in 3 ")
        assert f"pid {blocker.info.backend_pid}" in str(caught.value)
        assert "application 'vacuum full'" in str(caught.value)
    assert not (folder / "manifest.json").exists()
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
