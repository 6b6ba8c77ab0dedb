"""The lock-queue watchdog: backout's request for ``ACCESS EXCLUSIVE`` never stalls the
application. While it waits behind a session that holds a lock, plain ``SELECT``s queue behind
it; when more than ``--max-queued`` (5) do, backout gives the attempt up, which lets them run,
and retries with backoff. Every give-up is said (and, for an emergency, on the timeline).

A holder keeps ``ACCESS SHARE`` on ``jobs`` in an open transaction; the application is a few
sessions each running ``SELECT count(*) FROM jobs``, started once backout waits. The tests
synchronise on ``pg_stat_activity`` and check the history, the audit table and the timeline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import psycopg.errors
import pytest

from backout.database.waits import RunOptions, Waits, bounded
from tests.faults.activity import PATIENCE, POLL, NeverReached, backend, no_backout_sessions
from tests.faults.activity import running as started
from tests.faults.lock_waits import PRIORITY, applied_project, one_error_line, rows
from tests.runner import run

ROLLBACK = ("rollback", "006", "--yes", "--lock-timeout", "10m")
EMERGENCY = ("emergency", "006", "--reason", "claims stalled", "--yes", "--no-git",
             "--no-rehearsal", "--lock-timeout", "10m")  # fmt: skip
WAITING = "wait_event_type = 'Lock' AND query LIKE '%jobs%'"
GAVE_UP = "6 sessions queued behind backout's lock request (limit 5): gave up the attempt"


@pytest.fixture
def project(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    yield applied_project(tmp_path, database_url, monkeypatch)
    no_backout_sessions(database_url)


@pytest.fixture
def holder(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A long report: ``ACCESS SHARE`` on ``jobs`` until it commits."""
    with psycopg.connect(database_url, application_name="long report") as session:
        session.execute("LOCK TABLE jobs IN ACCESS SHARE MODE")
        yield session


class Application:
    """``count`` sessions, each running ``sql`` (a plain SELECT, say) in a thread of its own."""

    def __init__(self, url: str, count: int, sql: str) -> None:
        self.url, self.count, self.sql = url, count, sql
        self.failures: list[BaseException] = []
        self.threads = [threading.Thread(target=self._select) for _ in range(count)]

    def _select(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True, application_name="app") as conn:
                conn.execute("SET statement_timeout = '20s'")  # a stall fails, never hangs
                conn.execute(self.sql)
        except psycopg.Error as exc:
            self.failures.append(exc)

    def finished(self) -> bool:
        """Wait for every SELECT to end; whether they all ran."""
        for thread in self.threads:
            thread.join(PATIENCE)
        return not any(t.is_alive() for t in self.threads) and not self.failures

    def all_queued(self) -> datetime:
        """Wait until every SELECT waits for its lock; the server's time then."""
        found = _poll(
            self.url,
            "SELECT now() FROM pg_stat_activity WHERE application_name = 'app'"
            " AND datname = current_database()"
            " AND wait_event_type = 'Lock' HAVING count(*) = %s",
            (self.count,),
        )
        assert isinstance(found[0], datetime)
        return found[0]

    def waiting(self) -> int:
        return int(
            rows(
                self.url,
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'app'"
                " AND datname = current_database() AND wait_event_type = 'Lock'",
            )[0][0]
        )


@contextmanager
def application(
    url: str, count: int, sql: str = "SELECT count(*) FROM jobs"
) -> Iterator[Application]:
    """The application's SELECTs, started now (behind backout's queued request)."""
    app = Application(url, count, sql)
    for thread in app.threads:
        thread.start()
    try:
        yield app
    finally:
        for thread in app.threads:
            thread.join(PATIENCE)


def _poll(url: str, query: str, params: tuple[Any, ...]) -> tuple[Any, ...]:
    deadline = time.monotonic() + PATIENCE
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(query, params).fetchone()
            if row is not None:
                return tuple(row)
            time.sleep(POLL)
    raise NeverReached(f"never: {query}")


def watch_looked(url: str, since: datetime, looks: int = 3) -> None:
    """Wait until backout's watching session has run ``looks`` queries begun after ``since``
    (it looks every 0.1 s: the watchdog has seen what was there at ``since``)."""
    seen: set[datetime] = set()
    deadline = time.monotonic() + PATIENCE
    with psycopg.connect(url, autocommit=True) as conn:
        while len(seen) < looks:
            if time.monotonic() > deadline:
                raise NeverReached("backout's watching session never looked")
            found = conn.execute(
                "SELECT query_start FROM pg_stat_activity"
                " WHERE application_name = 'backout (watch)' AND query_start > %s"
                " AND datname = current_database()",
                (since,),
            ).fetchall()
            seen.update(row[0] for row in found)
            time.sleep(POLL)


def rolled_back(url: str) -> None:
    """006 is rolled back: its column and history row gone, one success audit row."""
    assert rows(url, PRIORITY) == [(0,)]
    assert ("006",) not in rows(url, "SELECT version FROM schema_migrations")
    assert rows(
        url,
        "SELECT outcome FROM backout_audit_event"
        " WHERE action IN ('rollback', 'emergency') ORDER BY id",
    ) == [("success",)]


@pytest.mark.parametrize("command", [ROLLBACK, EMERGENCY], ids=["rollback", "emergency"])
def test_six_sessions_queued_behind_backout_make_it_give_up_then_it_commits_once_the_holder_ends(
    project: Path, database_url: str, holder: psycopg.Connection[Any], command: tuple[str, ...]
) -> None:
    with started(command, project) as process:
        backend(database_url, WAITING)
        with application(database_url, 6) as app:
            assert app.finished()  # the application ran while the holder still holds its lock
        backend(database_url, WAITING)  # the retry waits again
        holder.commit()
        _, stderr = process.communicate(timeout=PATIENCE)

    assert process.returncode == 0, stderr
    blocker = holder.info.backend_pid
    assert f"006_add_jobs_priority: {GAVE_UP}, blocked by pid {blocker}" in stderr
    assert "retry 1/5 in " in stderr
    rolled_back(database_url)
    if command is EMERGENCY:
        (postmortem,) = (project / "ops/postmortems").glob("INC-*.md")
        timeline = postmortem.read_text()
        assert GAVE_UP in timeline
        assert f"blocked by pid {blocker}" in timeline


@pytest.mark.parametrize(
    ("queued", "option"), [(3, ()), (6, ("--max-queued", "0"))], ids=["under the limit", "off"]
)
def test_no_give_up_under_the_limit_or_with_the_watchdog_off(
    project: Path,
    database_url: str,
    holder: psycopg.Connection[Any],
    queued: int,
    option: tuple[str, ...],
) -> None:
    with started((*ROLLBACK, *option), project) as process:
        waiting = backend(database_url, WAITING)
        with application(database_url, queued) as app:
            watch_looked(database_url, since=app.all_queued())

            assert app.waiting() == queued  # still queued behind backout, which still waits
            assert backend(database_url, WAITING) == waiting
            holder.commit()
            assert app.finished()
        _, stderr = process.communicate(timeout=PATIENCE)

    assert process.returncode == 0, stderr
    assert "queued behind" not in stderr
    assert "retry" not in stderr
    rolled_back(database_url)


CONCURRENT = """\
-- Migration: 007_markets_slug_index.sql
-- Purpose: p
-- Phase: 1
-- Checklist: c

CREATE INDEX CONCURRENTLY idx_markets_slug ON markets (slug);

-- ROLLBACK
--   DROP INDEX CONCURRENTLY IF EXISTS idx_markets_slug;
"""


def test_a_statement_that_cannot_run_in_a_transaction_is_never_given_up_half_way(
    project: Path, database_url: str
) -> None:
    (project / "migrations/007_markets_slug_index.sql").write_text(CONCURRENT)
    assert run("apply", "--yes").exit_code == 0
    with psycopg.connect(database_url, application_name="vacuum") as holder:
        holder.execute("LOCK TABLE markets IN SHARE UPDATE EXCLUSIVE MODE")
        with started(("rollback", "007", "--yes", "--lock-timeout", "10m"), project) as process:
            waiting = backend(database_url, "wait_event_type = 'Lock'")
            with application(database_url, 6, "ANALYZE markets") as app:  # queued behind it
                watch_looked(database_url, since=app.all_queued())

                assert app.waiting() == 6
                assert backend(database_url, "wait_event_type = 'Lock'") == waiting
                holder.commit()
                assert app.finished()
            _, stderr = process.communicate(timeout=PATIENCE)

    assert process.returncode == 0, stderr
    assert "queued behind" not in stderr
    assert rows(database_url, "SELECT to_regclass('idx_markets_slug')") == [(None,)]
    assert ("007",) not in rows(database_url, "SELECT version FROM schema_migrations")


def test_when_the_retries_run_out_it_exits_5_saying_the_queue_was_the_reason(
    project: Path, database_url: str, holder: psycopg.Connection[Any]
) -> None:
    with started((*ROLLBACK, "--lock-retries", "0"), project) as process:
        backend(database_url, WAITING)
        with application(database_url, 6) as app:
            assert app.finished()
        _, stderr = process.communicate(timeout=PATIENCE)
        holder.rollback()

    assert process.returncode == 5, stderr
    error = one_error_line(stderr)
    assert "could not get its table locks in 1 attempts; the last time it gave up because " in (
        error
    )
    assert "6 sessions were queued behind its lock request (limit 5)" in error
    assert f"blocked by pid {holder.info.backend_pid}" in error
    assert rows(database_url, PRIORITY) == [(1,)]
    assert ("006",) in rows(database_url, "SELECT version FROM schema_migrations")
    assert rows(
        database_url,
        "SELECT outcome, sqlstate, details->>'queued', details->>'max_queued'"
        " FROM backout_audit_event WHERE action = 'rollback'",
    ) == [("failure", "57014", "6", "5")]


@pytest.fixture
def jobs(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE jobs (id int)")


def test_a_statement_timeout_cancel_is_the_statements_own_failure_never_a_give_up(
    database_url: str, jobs: None, holder: psycopg.Connection[Any]
) -> None:
    options = RunOptions(lock_timeout=60, statement_timeout=0.2, max_queued=1)
    progress: list[str] = []
    attempts: list[int] = []
    with psycopg.connect(database_url, autocommit=True, application_name="backout") as conn:

        def attempt() -> None:
            attempts.append(1)
            with bounded(conn, options, statements=True):
                conn.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")

        with application(database_url, 1), pytest.raises(psycopg.errors.QueryCanceled) as raised:
            Waits(options, progress.append).retrying(conn, "the test", attempt)

    assert "statement timeout" in str(raised.value)
    assert attempts == [1]
    assert progress == []
