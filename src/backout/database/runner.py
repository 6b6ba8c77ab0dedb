"""Running one migration's statements safely: apply or roll back, with its history row.

Steps run on the connection that holds the migration lock, and each first proves it still
does (:func:`~backout.database.lock.guard_transaction`): when that session is terminated, the
change ends with it. A transactional step runs every statement, the history change and the
audit row in one transaction: all of it happens or none of it. A lock timeout (PostgreSQL gave
up waiting for a table lock, ``lock_timeout``), or a give-up because too many sessions queued
behind backout's lock request (``max_queued``), is retried with exponential backoff and jitter,
reporting the sessions in the way each time (:mod:`backout.database.waits`). A step holding a
statement that cannot run in a transaction (``CREATE INDEX CONCURRENTLY``...) runs statement by
statement, each recorded in the journal as it finishes, so a failure says exactly what ran and
a re-run resumes after it. ``statement_timeout`` bounds the documented statements only, never
the history, journal and audit writes. Failures are audited in their own transaction, on the
watching connection, after the failed one rolled back.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg

from backout.database.connection import DatabaseError, first_line, milliseconds, set_timeouts
from backout.database.diagnostics import explained, next_step
from backout.database.history import (
    AuditEvent,
    ensure_journal,
    journal_clear,
    journal_done,
    journal_record,
    write_audit,
)
from backout.database.lock import LockLostError, guard_transaction, holds_lock
from backout.database.waits import BlockedError as BlockedError
from backout.database.waits import Reporter as Reporter
from backout.database.waits import RunOptions as RunOptions
from backout.database.waits import Waits, Watch
from backout.errors import BackoutError
from backout.migrations.statements import Flag, Statement

T = TypeVar("T")
StatementDone = Callable[[Statement, int, int], None]
"""Called after each statement ran: the statement, its row count (-1: none), milliseconds."""


@dataclass(frozen=True)
class Step:
    """One migration applied or rolled back: what runs, and what records it."""

    migration: str
    version: str
    direction: str
    """``apply`` or ``rollback``."""
    statements: tuple[Statement, ...]
    history_table: str
    finish: Callable[[psycopg.Connection[Any], int], None]
    """Writes the history change inside the step's last transaction (given the duration)."""
    audit: AuditEvent
    """The audit row, without outcome, SQL hash, error or duration (the runner fills those)."""
    no_transaction: bool = False
    """Run statement by statement outside a transaction, journaled, whatever the statements
    are (the migration's format says so)."""
    late_details: Callable[[datetime], dict[str, Any]] | None = None
    """More audit details, asked for when the audit row is written (after ``finish``), given
    the moment the history change was written."""

    @property
    def sql_sha256(self) -> str:
        return sql_sha256(self.statements)

    @property
    def transactional(self) -> bool:
        if self.no_transaction:
            return False
        return not any(s.has(Flag.NON_TRANSACTIONAL) for s in self.statements)


@dataclass(frozen=True)
class Ran:
    """A step that ran: how long it took, its success audit row, when its history changed."""

    duration_ms: int
    audit_id: int
    at: datetime
    """The moment the history change was written, to the second, inside the last transaction."""


def sql_sha256(statements: Sequence[Statement]) -> str:
    """SHA-256 of the exact SQL run: each statement and its ``;``, one per line."""
    return hashlib.sha256("".join(f"{s.sql};\n" for s in statements).encode()).hexdigest()


class StatementFailedError(DatabaseError):
    """A statement failed; the step's transaction was rolled back (or the journal says how far)."""

    def __init__(self, step: Step, statement: Statement, exc: psycopg.Error, ran: str) -> None:
        super().__init__(
            f"{step.migration} line {statement.line}: {explained(exc)}",
            sqlstate=exc.sqlstate,
            hint=f"{ran}; next: {next_step(exc, step.direction)}",
        )
        self.statement = statement


class BookkeepingFailedError(DatabaseError):
    """The history change or the audit row failed; the step's transaction was rolled back."""


@dataclass
class Runner:
    """Runs steps on ``conn``, the session holding the migration lock, watched from ``watch``
    (a lock-less connection, which also records failures when ``conn`` is gone)."""

    conn: psycopg.Connection[Any]
    watch: Watch
    audit_table: str
    options: RunOptions = field(default_factory=RunOptions)
    report: Reporter = lambda _: None
    sleep: Callable[[float], None] = time.sleep
    on_statement: StatementDone = lambda *_: None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __post_init__(self) -> None:
        self.conn.autocommit = True
        set_timeouts(self.conn, lock_timeout=self.options.lock_timeout)
        row = self.conn.execute("SELECT current_setting('statement_timeout')").fetchone()
        self._bookkeeping_timeout = str(row[0]) if row else "0"
        with suppress(BackoutError):  # without it, blockers are not named; nothing else
            self.watch.connection()  # open now: the first lock wait is watched from its start

    @property
    def waits(self) -> Waits:
        """How this runner waits for table locks, for other work under the same lock."""
        return Waits(self.options, self.report, self.sleep, self.watch)

    def run(self, step: Step) -> Ran:
        """Run ``step``; return how it ran, or raise once the failure is audited."""
        try:
            if step.transactional:
                waits = self.waits
                return self._retrying(step, lambda: self._in_transaction(step, waits), waits)
            return self._journaled(step)
        except LockLostError as exc:
            self._audit_failure(step, None, error=exc.message)
            raise

    def _in_transaction(self, step: Step, waits: Waits) -> Ran:
        started = time.monotonic()
        current = step.statements[0] if step.statements else None
        try:
            with self.conn.transaction():
                guard_transaction(self.conn, step.migration)
                with self._statement_timeout(local=True):
                    for current in step.statements:
                        self._execute(current)
                current = None
                ran = self._finish(step, _ms_since(started))
        except psycopg.Error as exc:
            if waits.gives_up(exc):
                raise  # not the statement's failure: the whole attempt is retried
            self._audit_failure(step, exc, None, _ms_since(started))
            raise self._failed(step, current, exc, "nothing was changed") from None
        return ran

    def _journaled(self, step: Step) -> Ran:
        """Statement by statement outside a transaction, each recorded in the journal."""
        key = (step.history_table, step.version, step.direction, step.sql_sha256)
        started = time.monotonic()
        ensure_journal(self.conn)
        done = journal_done(self.conn, key)
        for index, statement in enumerate(step.statements):
            if index in done:
                self.report(f"  line {statement.line}: already done in an earlier run, skipped")
                continue
            t0 = time.monotonic()
            try:
                self._retrying(
                    step,
                    lambda s=statement: self._journaled_statement(step, s),  # type: ignore[misc]
                    watchdog=not statement.has(Flag.NON_TRANSACTIONAL),
                )
            except psycopg.Error as exc:
                self._audit_failure(step, exc, {"finished": sorted(done)}, _ms_since(started))
                said = (
                    f"statements before line {statement.line} ran and are journaled; "
                    "fix the cause and run the same command again to resume"
                    if index
                    else "nothing ran; fix the cause and run it again"
                )
                raise StatementFailedError(step, statement, exc, said) from None
            took = _ms_since(t0)
            done[index] = took
            journal_record(self.conn, key, index, took)
            self.report(f"  line {statement.line}: done in {took} ms (journaled)")
        with self.conn.transaction():
            guard_transaction(self.conn, step.migration)
            ran = self._finish(step, _ms_since(started), {"journal": {"finished": sorted(done)}})
            journal_clear(self.conn, key)
        return ran

    def _journaled_statement(self, step: Step, statement: Statement) -> None:
        """One statement on its own, only while this session holds the migration lock."""
        if not holds_lock(self.conn):
            raise LockLostError(f"{step.migration} line {statement.line}")
        with self._statement_timeout(local=False):
            self._execute(statement)

    @contextmanager
    def _statement_timeout(self, *, local: bool) -> Iterator[None]:
        """``--statement-timeout`` for the documented statements run inside, and the session's
        own value again after them (for the transaction, or for the session)."""
        if self.options.statement_timeout is None:
            yield
            return
        query = "SELECT set_config('statement_timeout', %s, %s)"
        self.conn.execute(query, (milliseconds(self.options.statement_timeout), local))
        try:
            yield
        finally:
            if not (local or self.conn.closed or self.conn.broken):
                self.conn.execute(query, (self._bookkeeping_timeout, False))
        if local:
            self.conn.execute(query, (self._bookkeeping_timeout, True))

    def _finish(self, step: Step, duration: int, details: dict[str, Any] | None = None) -> Ran:
        """The history change and the success audit row, in the caller's transaction."""
        step.finish(self.conn, duration)
        at = self.clock().replace(microsecond=0)
        audit_id = write_audit(
            self.conn, self.audit_table, self._event(step, "success", duration, details, at)
        )
        return Ran(duration, audit_id, at)

    def _execute(self, statement: Statement) -> None:
        started = time.monotonic()
        rows = self.conn.execute(statement.sql).rowcount
        self.on_statement(statement, rows, _ms_since(started))

    def _retrying(
        self,
        step: Step,
        attempt: Callable[[], T],
        waits: Waits | None = None,
        *,
        watchdog: bool = True,
    ) -> T:
        """``attempt`` retried after each give-up. ``watchdog``: whether it may be cancelled
        when too many sessions queue behind it; never for a statement that cannot run in a
        transaction (``CREATE INDEX CONCURRENTLY`` cancelled half-way leaves an invalid index
        that its retry would trip over; its lock does not hold up reads and writes anyway)."""
        return (waits or self.waits).retrying(
            self.conn,
            step.migration,
            attempt,
            on_give_up=lambda exc, blocked: self._audit_failure(step, exc, _given_up(blocked)),
            watchdog=watchdog,
        )

    def _failed(
        self, step: Step, statement: Statement | None, exc: psycopg.Error, what: str
    ) -> BackoutError:
        """The error of a failed transaction: the statement that failed, or the bookkeeping."""
        lost = self.conn.closed or self.conn.broken
        said = f"its transaction was rolled back: {what}" + (
            "; the session holding the migration lock ended" if lost else ""
        )
        if statement is None:
            return BookkeepingFailedError(
                f"{step.migration}: recording it in the history and audit tables failed: "
                f"{first_line(exc)}",
                sqlstate=exc.sqlstate,
                hint=said,
            )
        return StatementFailedError(step, statement, exc, said)

    def _event(
        self,
        step: Step,
        outcome: str,
        duration: int | None,
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditEvent:
        late = step.late_details(at) if step.late_details and at is not None else {}
        return replace(
            step.audit,
            outcome=outcome,
            sql_sha256=step.sql_sha256,
            duration_ms=duration,
            details={**step.audit.details, **late, **(details or {})},
        )

    def _audit_failure(
        self,
        step: Step,
        exc: psycopg.Error | None,
        details: dict[str, Any] | None = None,
        duration: int | None = None,
        *,
        error: str | None = None,
    ) -> None:
        """The failure row, in its own transaction on the watching connection (``conn`` may
        be dead)."""
        event = replace(
            self._event(step, "failure", duration, details),
            sqlstate=exc.sqlstate if exc is not None else None,
            error=first_line(exc) if exc is not None else error,
        )
        try:
            write_audit(self.watch.connection(), self.audit_table, event)
        except (psycopg.Error, BackoutError):
            self.report("  (could not write the failure to the audit table)")


def _given_up(blocked: BlockedError) -> dict[str, Any]:
    """The audit details of a step given up: attempts, and the queue when it was the reason."""
    details: dict[str, Any] = {"attempts": blocked.attempts}
    if blocked.queue is not None:
        details["queued"] = blocked.queue.sessions
        details["max_queued"] = blocked.queue.limit
    return details


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
