"""Bounded waits for table locks: how long, how often, and who is in the way.

Every statement backout runs waits at most ``lock_timeout`` for a table lock (PostgreSQL then
gives up with ``LockNotAvailable``). :meth:`Waits.retrying` runs an attempt (a whole
transaction) and, when it gave up waiting, runs it again after an exponential backoff with
jitter, naming each time the sessions that were in the way; when the retries run out it raises
:class:`BlockedError` (exit 5). The sessions in the way are seen from a :class:`Watch`: a second,
lock-less connection to the same server, opened only when an attempt has to wait.

A long ``lock_timeout`` alone would let backout's queued request stall the application: every
session asking a conflicting lock after it queues behind it. So the watch is also a watchdog:
when more than ``max_queued`` sessions are queued behind backout while it waits, it cancels the
statement, and the attempt is given up and retried exactly like a lock timeout.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
import psycopg.errors
from psycopg.conninfo import make_conninfo

from backout.database.connection import APPLICATION_NAME, DatabaseError, connect, set_timeouts
from backout.database.lock import BlockerWatch, Queue, Session
from backout.errors import LockTimeoutError

T = TypeVar("T")
Reporter = Callable[[str], None]
WATCH_APPLICATION = f"{APPLICATION_NAME} (watch)"
"""How the watching connection is named in ``pg_stat_activity``."""
MAX_BACKOFF = 60.0
"""Seconds: the longest pause between two attempts, however many retries were asked for."""


@dataclass(frozen=True)
class RunOptions:
    """How patiently and how carefully SQL is run."""

    lock_wait: float = 30.0
    """Seconds to wait for the migration lock (another backout run)."""
    lock_timeout: float = 5.0
    """Seconds a statement may wait for a table lock before PostgreSQL gives up."""
    lock_retries: int = 5
    statement_timeout: float | None = None
    """Seconds each documented statement may run (never backout's own bookkeeping)."""
    backoff: float = 0.5
    """Seconds before the first retry; doubled each time, with jitter."""
    max_queued: int = 5
    """Give up an attempt when more sessions than this queue behind its lock request (0: never)."""


class BlockedError(LockTimeoutError):
    """Given up every time (a lock timeout, or too many sessions queued behind the request):
    other sessions kept the tables we need locked."""

    def __init__(
        self,
        subject: str,
        blockers: Sequence[Session],
        attempts: int,
        queue: Queue | None = None,
    ) -> None:
        who = "; ".join(b.describe() for b in blockers) or "sessions that had finished by then"
        why = (
            f"; the last time it gave up because {queue.sessions} sessions were queued behind"
            f" its lock request (limit {queue.limit})"
            if queue
            else ""
        )
        super().__init__(
            f"{subject}: could not get its table locks in {attempts} attempts{why}; "
            f"blocked by {who}",
            hint="nothing was changed; retry when they finish, or end them"
            + ("; --max-queued sets how many sessions may queue behind it" if queue else ""),
        )
        self.blockers = tuple(blockers)
        self.attempts = attempts
        self.queue = queue


class Watch:
    """A lock-less connection beside ``conn``, to the same server and database as the same
    user, opened on first use and again if it was lost. It sees who blocks ``conn``; the
    runner also writes failure audit rows on it, since ``conn`` may be the one that died."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conninfo = same_server(conn)
        self._conn: psycopg.Connection[Any] | None = None

    def connection(self) -> psycopg.Connection[Any]:
        """The watching connection, opened now if it is not (or no longer) open."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                self._conn = connect(self._conninfo, autocommit=True, application=WATCH_APPLICATION)
            except DatabaseError as exc:  # its message would spell out every parameter
                raise DatabaseError(
                    "could not open a second connection to watch for blocking sessions",
                    sqlstate=exc.sqlstate,
                ) from None
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def same_server(conn: psycopg.Connection[Any]) -> str:
    """The parameters ``conn`` was opened with (password included), pinned to the host it
    reached, so that a list of hosts cannot lead the watch to another server."""
    params = {
        option.keyword.decode(): option.val.decode()
        for option in conn.pgconn.info
        if option.val is not None and option.val != b""
    }
    params.update(host=conn.info.host, port=str(conn.info.port))
    if conn.info.hostaddr:
        params["hostaddr"] = conn.info.hostaddr
    return make_conninfo("", **params)


@dataclass
class Waits:
    """How an operation waits for table locks: its options, whom it tells, who watches."""

    options: RunOptions = RunOptions()
    report: Reporter = lambda _: None
    sleep: Callable[[float], None] = time.sleep
    watch: Watch | None = None
    """The connection blockers are seen from; None: one opened for each :meth:`retrying`."""
    _look: BlockerWatch | None = field(default=None, init=False, repr=False, compare=False)

    def retrying(
        self,
        conn: psycopg.Connection[Any],
        subject: str,
        attempt: Callable[[], T],
        *,
        on_give_up: Callable[[psycopg.Error, BlockedError], None] = lambda *_: None,
        watchdog: bool = True,
    ) -> T:
        """``attempt()``, run again after each give-up, at most ``lock_retries`` times.

        An attempt is given up on a lock timeout and, unless ``watchdog`` is false, when more
        than ``max_queued`` sessions queue behind it (the watch cancels its statement). Pass
        ``watchdog=False`` for a statement that must not be cancelled half-way, one that runs
        outside a transaction. An attempt that catches database errors itself lets those
        through (:meth:`gives_up`). ``conn`` is the connection ``attempt`` runs on;
        ``on_give_up`` is called with the last error and the :class:`BlockedError` that is
        raised next, when the retries have run out."""
        retries, limit = self.options.lock_retries, self.options.max_queued if watchdog else 0
        with self._watching(conn) as watch:
            for number in range(retries + 1):
                look = BlockerWatch(watch.connection, conn.info.backend_pid, max_queued=limit)
                try:
                    with self._attempting(look):
                        return attempt()
                except psycopg.Error as exc:
                    if not _gave_up(exc, look):
                        raise
                    error = exc
                seen, queue = look.take(), look.queue()
                if number == retries:
                    blocked = BlockedError(
                        subject, queue.blockers if queue else seen, number + 1, queue
                    )
                    on_give_up(error, blocked)
                    raise blocked from None
                self._pause(subject, seen, number, queue)
        raise AssertionError("unreachable")

    def gives_up(self, exc: BaseException) -> bool:
        """Whether ``exc``, raised inside the attempt running now, gives it up to be retried
        (a lock timeout, or the watchdog's cancel) rather than being a failure of its own."""
        return _gave_up(exc, self._look)

    @contextmanager
    def _attempting(self, look: BlockerWatch) -> Iterator[None]:
        outer, self._look = self._look, look
        try:
            with look:
                yield
        finally:
            self._look = outer

    @contextmanager
    def _watching(self, conn: psycopg.Connection[Any]) -> Iterator[Watch]:
        if self.watch is not None:
            yield self.watch
            return
        with Watch(conn) as watch:
            yield watch

    def _pause(
        self, subject: str, blockers: Sequence[Session], number: int, queue: Queue | None
    ) -> None:
        delay = min(self.options.backoff * 2**number * random.uniform(0.8, 1.2), MAX_BACKOFF)
        if queue is not None:
            blockers = queue.blockers
            why = (
                f"{queue.sessions} sessions queued behind backout's lock request "
                f"(limit {queue.limit}): gave up the attempt"
            )
        else:
            why = f"lock timeout ({self.options.lock_timeout:g} s)"
        who = "; ".join(b.describe() for b in blockers) or "a session that has finished"
        self.report(
            f"  {subject}: {why}, blocked by {who}; "
            f"retry {number + 1}/{self.options.lock_retries} in {delay:.1f} s"
        )
        self.sleep(delay)


def _gave_up(exc: BaseException, look: BlockerWatch | None) -> bool:
    """A lock timeout, or a cancel that ``look``'s watchdog sent (a cancel from anyone else,
    ``statement_timeout`` included, is the statement's own failure)."""
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return True
    return (
        isinstance(exc, psycopg.errors.QueryCanceled)
        and look is not None
        and look.queue() is not None
    )


@contextmanager
def bounded(
    conn: psycopg.Connection[Any],
    options: RunOptions,
    *,
    statements: bool = False,
    force_rollback: bool = False,
) -> Iterator[None]:
    """A transaction on ``conn`` whose lock waits last at most ``options.lock_timeout`` (and,
    with ``statements``, whose statements run at most ``options.statement_timeout``)."""
    with conn.transaction(force_rollback=force_rollback):
        set_timeouts(
            conn,
            lock_timeout=options.lock_timeout,
            statement_timeout=options.statement_timeout if statements else None,
            local=True,
        )
        yield
