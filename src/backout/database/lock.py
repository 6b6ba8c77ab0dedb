"""The migration lock, and who is in our way.

A PostgreSQL session-level advisory lock, held by the very session that runs the change: only
one backout run changes a database at a time, and the lock can neither go stale nor be lost
apart from the change. The server releases it when the session ends (a crash, a killed process,
a lost network, ``pg_terminate_backend``), and then the change, which ran in that session, ends
with it: its open transaction is rolled back and its connection is gone. Each step also proves,
inside its own transaction, that this session still holds the lock (:func:`guard_transaction`),
and keeps it to the commit whatever its SQL does. Who blocks the session is seen from another,
lock-less connection (:class:`BlockerWatch`, ``pg_blocking_pids``), so a lock timeout can name
them; the same watch gives up a lock request that too many sessions queue behind (the watchdog).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from backout.errors import BackoutError, LockTimeoutError
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
            parts.append(f"query {self.short_query!r}")
        return ", ".join(parts)

    @property
    def short_query(self) -> str | None:
        """Its query, literals replaced by ``$n`` placeholders, on one line, shortened."""
        return _shorten(self.query) if self.query else None


class LockHeldError(LockTimeoutError):
    """Another session holds the migration lock."""

    def __init__(self, holder: Session | None, waited: float) -> None:
        who = holder.describe() if holder else "a session that has since ended"
        super().__init__(
            f"another backout run holds the migration lock ({who}); waited {waited:.0f} s",
            hint="wait for it to finish, or raise --lock-wait; nothing was changed",
        )
        self.holder = holder


class LockLostError(BackoutError):
    """This session no longer holds the migration lock: what was to run did not (exit 1)."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what}: this session no longer holds the migration lock, so it was not run",
            hint="another backout run may be changing this database; check `backout status`, "
            "then run the same command again",
        )


@contextmanager
def migration_lock(
    conn: psycopg.Connection[Any],
    *,
    wait: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[None]:
    """Hold the advisory lock on ``conn``, the connection that runs the change, waiting at most
    ``wait`` seconds for another run to let it go."""
    deadline = clock() + wait
    while not _try_lock(conn):
        if clock() >= deadline:
            raise LockHeldError(lock_holder(conn), wait)
        sleep(min(POLL_SECONDS * 5, max(deadline - clock(), 0.01)))
    try:
        yield
    finally:
        if not (conn.closed or conn.broken):
            with suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _try_lock(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
    return bool(row and row[0])


_HELD = """
EXISTS (SELECT 1 FROM pg_locks
         WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND classid = (%(key)s >> 32)::oid AND objid = (%(key)s & 4294967295)::oid
           AND objsubid = 1)
"""


def holds_lock(conn: psycopg.Connection[Any]) -> bool:
    """Whether this session holds the migration lock right now."""
    row = conn.execute(f"SELECT {_HELD}", {"key": LOCK_KEY}).fetchone()
    return bool(row and row[0])


def guard_transaction(conn: psycopg.Connection[Any], what: str) -> None:
    """Inside a transaction on ``conn``: prove this session holds the migration lock, and hold
    it again until the transaction ends (a transaction-level lock, which no SQL can release),
    or raise :class:`LockLostError` before anything of ``what`` runs."""
    row = conn.execute(
        f"SELECT CASE WHEN {_HELD} THEN pg_try_advisory_xact_lock(%(key)s) ELSE false END",
        {"key": LOCK_KEY},
    ).fetchone()
    if not (row and row[0]):
        raise LockLostError(what)


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


@dataclass(frozen=True)
class Queue:
    """The sessions queued behind backout when the watchdog gave up its lock request."""

    sessions: int
    limit: int
    blockers: tuple[Session, ...]
    """Who blocked backout then."""


# One statement, so that the check and the cancel see the same moment: backout's session is
# cancelled only while it waits for a heavyweight lock (``wait_event_type = 'Lock'``) and more
# than ``limit`` sessions wait behind it, for a lock it holds or one it asks for ahead of them
# (``pg_blocking_pids`` names both). The lock may still be granted between the read and the
# signal: the race is a few microseconds wide, and the statement it would cancel is then one
# whose transaction rolls back and is retried like a lock timeout. Statements that cannot run
# in a transaction are never watched this way (see Waits.retrying). Only waiting sessions are
# asked for their blockers, so the count costs nothing while nobody waits.
_GIVE_UP = """
SELECT pg_cancel_backend(a.pid), queued.n
  FROM pg_stat_activity a,
       LATERAL (SELECT count(*) AS n FROM pg_stat_activity q
                 WHERE q.wait_event_type = 'Lock' AND a.pid = ANY(pg_blocking_pids(q.pid))) queued
 WHERE a.pid = %(pid)s AND a.wait_event_type = 'Lock' AND queued.n > %(limit)s
"""


def give_up_if_queued(
    conn: psycopg.Connection[Any], pid: int, limit: int, blockers: Sequence[Session]
) -> Queue | None:
    """Cancel session ``pid`` (from ``conn``, another session) if it waits for a lock with more
    than ``limit`` sessions queued behind it; the queue when it did."""
    row = conn.execute(_GIVE_UP, {"pid": pid, "limit": limit}).fetchone()
    if row is None or not row[0]:
        return None
    return Queue(int(row[1]), limit, tuple(blockers))


class BlockerWatch:
    """Watches session ``pid`` from another connection (``source()``, asked for on the first
    look, so that nothing is opened for a wait that never happens) and remembers the last
    blockers seen. With ``max_queued``, it also cancels the session's statement, once, when
    more sessions than that queue behind its lock request (:func:`give_up_if_queued`)."""

    def __init__(
        self, source: Callable[[], psycopg.Connection[Any]], pid: int, *, max_queued: int = 0
    ) -> None:
        self._source = source
        self._pid = pid
        self._max_queued = max_queued
        self._stop = threading.Event()
        self._looking = threading.Lock()
        self._seen: list[Session] = []
        self._queue: Queue | None = None
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

    def queue(self) -> Queue | None:
        """The queue the watch gave up for, if it cancelled the session's statement. A look in
        progress ends first: its cancel may reach the session before the look returns."""
        with self._looking:
            return self._queue

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            with self._looking:
                try:
                    self._look()
                except (psycopg.Error, BackoutError):
                    return  # no watching connection: the failure will say less, nothing more

    def _look(self) -> None:
        conn = self._source()
        found = blockers(conn, self._pid)
        if found:
            self._seen = found
        if self._max_queued and self._queue is None:
            self._queue = give_up_if_queued(conn, self._pid, self._max_queued, self._seen)


def _shorten(query: str, limit: int = 80) -> str:
    flat = " ".join(redact(normalize_query(query)).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
