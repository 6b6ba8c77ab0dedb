"""The migration lock: a second run waits, then names the session that holds it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from backout.config import Settings
from backout.database.connection import Target
from backout.database.lock import LOCK_KEY, LockHeldError, LockLostError
from backout.errors import ExitCode
from backout.operations.apply import apply
from tests.sample_project import FAST, ME, states, write


def test_a_second_run_waits_for_the_lock_then_names_its_holder(
    settings: Settings, target: Target, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True, application_name="other run") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))

        with pytest.raises(LockHeldError) as caught:
            apply(settings, target, ME, options=FAST)

        assert caught.value.exit_code == ExitCode.LOCKED
        assert f"pid {holder.info.backend_pid}" in str(caught.value)
        assert "application 'other run'" in str(caught.value)
    assert set(states(settings, target).values()) == {"pending"}


def test_two_concurrent_applies_the_second_waits_then_names_the_first(
    project: Path, settings: Settings, target: Target
) -> None:
    write(project, "007_slow.sql", "SELECT pg_sleep(2);", "SELECT 1;")
    first = threading.Thread(target=lambda: apply(settings, target, ME))
    first.start()
    time.sleep(0.5)

    with pytest.raises(LockHeldError) as caught:
        apply(settings, target, ME, options=FAST)
    first.join()

    assert "application 'backout'" in str(caught.value)
    assert set(states(settings, target).values()) == {"applied"}


def test_the_lock_is_held_by_the_session_that_runs_the_change(
    project: Path, settings: Settings, target: Target, database_url: str
) -> None:
    write(project, "007_slow.sql", "SELECT pg_sleep(1);", "SELECT 1;")
    running = threading.Thread(target=lambda: apply(settings, target, ME))
    running.start()
    with psycopg.connect(database_url, autocommit=True) as watcher:
        for _ in range(500):
            sleeping = watcher.execute(
                "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(1)'"
                " AND datname = current_database()"
            ).fetchall()
            if sleeping:
                break
            time.sleep(0.01)
        holders = watcher.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = (%s >> 32)::oid AND objid = (%s & 4294967295)::oid",
            (LOCK_KEY, LOCK_KEY),
        ).fetchall()
    running.join()

    assert sleeping
    assert holders == sleeping  # terminating the holder ends the change with it
    assert set(states(settings, target).values()) == {"applied"}


def test_sql_that_releases_the_lock_keeps_it_to_its_commit_and_the_next_step_is_refused(
    project: Path, settings: Settings, target: Target, database_url: str
) -> None:
    write(
        project,
        "007_unlock.sql",
        "SELECT pg_advisory_unlock_all();\nCREATE TABLE w (id int);\nSELECT pg_sleep(0.5);",
        "DROP TABLE w;",
    )
    write(project, "008_after.sql", "CREATE TABLE v (id int);", "DROP TABLE v;")
    outcome: list[BaseException] = []

    def first() -> None:
        try:
            apply(settings, target, ME)
        except BaseException as exc:
            outcome.append(exc)

    running = threading.Thread(target=first)
    running.start()
    with psycopg.connect(database_url, autocommit=True) as other:
        for _ in range(500):
            if other.execute(
                "SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(0.5)'"
                " AND datname = current_database()"
            ).fetchall():
                break
            time.sleep(0.01)
        taken = other.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
        other.execute("SELECT pg_advisory_unlock_all()")
    running.join()

    assert taken == (False,)  # 007's transaction still held the lock its SQL released
    (error,) = outcome
    assert isinstance(error, LockLostError)
    assert error.exit_code == ExitCode.FAILED
    assert "008_after" in str(error)
    assert states(settings, target)["007_unlock"] == "applied"
    assert states(settings, target)["008_after"] == "pending"
    with psycopg.connect(database_url, autocommit=True) as conn:
        audit = conn.execute(
            "SELECT outcome FROM backout_audit_event WHERE migration = '008_after'"
        ).fetchall()
    assert audit == [("failure",)]
