"""A dry run waits like a real run: each lock wait bounded by ``lock_timeout``, retried with the
sessions in the way named, then given up (exit 5); ``statement_timeout`` bounds its statements.
Nothing it ran is kept, whatever happened."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings
from backout.database.connection import Target
from backout.database.runner import BlockedError
from backout.database.waits import Waits
from backout.errors import ExitCode
from backout.migrations.statements import split
from backout.operations.apply import apply
from backout.operations.dry_run import dry_run
from backout.operations.rollback import rollback
from tests.sample_project import FAST, ME, rows, states, write

PRIORITY = "SELECT count(*) FROM information_schema.columns WHERE column_name = 'priority'"


def test_a_dry_run_behind_a_blocker_retries_names_it_and_gives_up(
    settings: Settings, target: Target, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    apply(settings, target, ME)
    progress: list[str] = []
    with psycopg.connect(database_url, application_name="nightly export") as blocker:
        blocker.execute("LOCK TABLE jobs IN ACCESS SHARE MODE")

        with pytest.raises(BlockedError) as caught:
            rollback(
                settings, target, ME, "006", dry_run=True, options=FAST, report=progress.append
            )

        assert caught.value.exit_code == ExitCode.LOCKED
        assert f"pid {blocker.info.backend_pid}" in str(caught.value)
        assert "application 'nightly export'" in str(caught.value)
        assert str(caught.value).startswith("the dry run: ")
        # nothing of the dry run waits any more: its queued request went with its transaction
        waiting = (
            "SELECT count(*) FROM pg_locks WHERE NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        assert rows(conn, waiting) == [(0,)]
    assert any("lock timeout (0.2 s)" in line and "retry 1/1" in line for line in progress)
    assert rows(conn, PRIORITY) == [(1,)]
    assert states(settings, target)["006_add_jobs_priority"] == "applied"


def test_a_dry_run_without_options_is_bounded_too(
    database_url: str, conn: psycopg.Connection[Any]
) -> None:
    conn.execute("CREATE TABLE t (id int, gone int)")
    statements = split("ALTER TABLE t DROP COLUMN gone;")
    with (
        psycopg.connect(database_url) as blocker,
        psycopg.connect(database_url, autocommit=True) as target,
    ):
        blocker.execute("LOCK TABLE t IN ACCESS SHARE MODE")
        with pytest.raises(BlockedError):
            dry_run(target, statements, Waits(replace(FAST, lock_retries=0)))
        blocker.rollback()

        assert dry_run(target, statements) == ["ok      line 1: ALTER TABLE t DROP COLUMN gone"]
    assert rows(
        conn, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'gone'"
    ) == [(1,)]


def test_a_dry_run_bounds_each_statement_with_the_statement_timeout(
    project: Path, settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    write(
        project,
        "007_slow.sql",
        "CREATE TABLE w (id int);",
        "SELECT pg_sleep(5);\nDROP TABLE w;",
    )
    apply(settings, target, ME)

    outcome = rollback(
        settings, target, ME, "007", dry_run=True, options=replace(FAST, statement_timeout=0.2)
    )

    assert outcome.done[0].startswith("FAILED  line")
    assert "canceling statement due to statement timeout" in outcome.done[0]
    assert outcome.done[1].startswith("ok      line")
    assert rows(conn, "SELECT to_regclass('w')") == [("w",)]
    assert states(settings, target)["007_slow"] == "applied"
