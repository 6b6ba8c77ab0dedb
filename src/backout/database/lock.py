"""The migration lock, and who is in our way.

A PostgreSQL session-level advisory lock, held on a dedicated connection: only one backout run
changes a database at a time, and the lock cannot go stale, because the server releases it when
the session ends (a crash, a killed process, a lost network). The same connection then watches
the session that runs the SQL and records which sessions block it (``pg_blocking_pids``), so a
lock timeout can name them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from backout.database.connection import connect
from backout.errors import LockTimeoutError
from backout.redaction import normalize_query, redact

# One lock per database for every backout run: "backout" in ASCII, as a 64-bit key.
LOCK_KEY = int.from_bytes(b"backout", "big")
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Session:
    """A database session as ``pg_stat_activity`` shows it."""

    pid: int
    user: str | None
    application: str | None
    state: str | None
    query: str | None
    since: datetime | None
    """When its transaction (or, for the lock holder, its connection) started."""
    waited: timedelta | None = None
    """How long it has been in its current transaction."""

    def describe(self) -> str:
        """One line naming the session; its query's literals replaced by ``$n`` placeholders
        (another session's SQL may hold a password or personal data)."""
        parts = [f"pid {self.pid}"]
        if self.user:
            parts.append(f"user {self.user}")
        if self.application:
            parts.append(f"application {redact(self.application)!r}")
        if self.state:
            parts.append(self.state)
        if self.since:
            parts.append(f"since {self.since:%Y-%m-%d %H:%M:%S %Z}".strip())
        if self.query:
            parts.append(f"query {_shorten(self.query)!r}")
        return ", ".join(parts)


class LockHeldError(LockTimeoutError):
    """Another session holds the migration lock."""

    def __init__(self, holder: Session | None, waited: float) -> None:
        who = holder.describe() if holder else "a session that has since ended"
        super().__init__(
            f"another backout run holds the migration lock ({who}); waited {waited:.0f} s",
            hint="wait for it to finish, or raise --lock-wait; nothing was changed",
        )
        self.holder = holder


@contextmanager
def migration_lock(
    url: str,
    *,
    wait: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[psycopg.Connection[Any]]:
    """Hold the advisory lock on a dedicated connection, waiting at most ``wait`` seconds."""
    conn = connect(url, autocommit=True)
    try:
        deadline = clock() + wait
        while not _try_lock(conn):
            if clock() >= deadline:
                raise LockHeldError(lock_holder(conn), wait)
            sleep(min(POLL_SECONDS * 5, max(deadline - clock(), 0.01)))
        try:
            yield conn
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    finally:
        conn.close()


def _try_lock(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
    return bool(row and row[0])


def lock_holder(conn: psycopg.Connection[Any]) -> Session | None:
    """The session holding the migration lock in this database, if any."""
    row = conn.execute(
        """
        SELECT a.pid, a.usename, a.application_name, a.state, NULL, a.backend_start
          FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
                 SELECT oid FROM pg_database WHERE datname = current_database())
           AND l.classid = (%s >> 32)::oid AND l.objid = (%s & 4294967295)::oid
           AND l.objsubid = 1
        """,
        (LOCK_KEY, LOCK_KEY),
    ).fetchone()
    return Session(*row) if row else None


def blockers(conn: psycopg.Connection[Any], pid: int) -> list[Session]:
    """The sessions that block session ``pid`` right now."""
    rows = conn.execute(
        """
        SELECT pid, usename, application_name, state, query, xact_start, now() - xact_start
          FROM pg_stat_activity
         WHERE pid = ANY(pg_blocking_pids(%s))
         ORDER BY xact_start NULLS LAST
        """,
        (pid,),
    ).fetchall()
    return [Session(*row) for row in rows]


class BlockerWatch:
    """Watches session ``pid`` from the lock connection and remembers the last blockers seen."""

    def __init__(self, conn: psycopg.Connection[Any], pid: int) -> None:
        self._conn = conn
        self._pid = pid
        self._stop = threading.Event()
        self._seen: list[Session] = []
        self._thread = threading.Thread(target=self._run, name="backout-blockers", daemon=True)

    def __enter__(self) -> BlockerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def take(self) -> list[Session]:
        """The blockers seen since the last call."""
        seen, self._seen = self._seen, []
        return seen

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                found = blockers(self._conn, self._pid)
            except psycopg.Error:
                return  # the lock connection is gone; the run will notice on its own
            if found:
                self._seen = found


def _shorten(query: str, limit: int = 80) -> str:
    flat = " ".join(redact(normalize_query(query)).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
