"""Running one migration's statements safely: apply or roll back, with its history row.

A transactional step runs every statement, the history change and the audit row in one
transaction: all of it happens or none of it. A lock timeout (PostgreSQL gave up waiting for a
table lock, ``lock_timeout``) is retried with exponential backoff and jitter, reporting the
sessions in the way each time. A step holding a statement that cannot run in a transaction
(``CREATE INDEX CONCURRENTLY``...) runs statement by statement, each recorded in the journal as
it finishes, so a failure says exactly what ran and a re-run resumes after it. Failures are
audited in their own transaction, on the lock connection, after the failed one rolled back.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
import psycopg.errors

from backout.database.connection import DatabaseError, first_line, set_timeouts
from backout.database.history import (
    AuditEvent,
    ensure_journal,
    journal_clear,
    journal_done,
    journal_record,
    write_audit,
)
from backout.database.lock import BlockerWatch, Session
from backout.errors import LockTimeoutError
from backout.migrations.statements import Flag, Statement

T = TypeVar("T")
Reporter = Callable[[str], None]
StatementDone = Callable[[Statement, int, int], None]
"""Called after each statement ran: the statement, its row count (-1: none), milliseconds."""


@dataclass(frozen=True)
class RunOptions:
    """How patiently and how carefully SQL is run."""

    lock_wait: float = 30.0
    """Seconds to wait for the migration lock (another backout run)."""
    lock_timeout: float = 5.0
    """Seconds a statement may wait for a table lock before PostgreSQL gives up."""
    lock_retries: int = 5
    statement_timeout: float | None = None
    backoff: float = 0.5
    """Seconds before the first retry; doubled each time, with jitter."""


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
    late_details: Callable[[datetime], dict[str, Any]] | None = None
    """More audit details, asked for when the audit row is written (after ``finish``), given
    the moment the history change was written."""

    @property
    def sql_sha256(self) -> str:
        return sql_sha256(self.statements)

    @property
    def transactional(self) -> bool:
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
            f"{step.migration} line {statement.line}: {first_line(exc)}",
            sqlstate=exc.sqlstate,
            hint=ran,
        )
        self.statement = statement


class BlockedError(LockTimeoutError):
    """Lock timeouts every time: other sessions kept the tables we need locked."""

    def __init__(self, step: Step, blockers: Sequence[Session], attempts: int) -> None:
        who = "; ".join(b.describe() for b in blockers) or "sessions that had finished by then"
        super().__init__(
            f"{step.migration}: could not get its table locks in {attempts} attempts; "
            f"blocked by {who}",
            hint="nothing was changed; retry when they finish, or end them",
        )
        self.blockers = tuple(blockers)


@dataclass
class Runner:
    """Runs steps on ``conn``, watched from ``lock_conn`` (which holds the migration lock)."""

    conn: psycopg.Connection[Any]
    lock_conn: psycopg.Connection[Any]
    audit_table: str
    options: RunOptions = field(default_factory=RunOptions)
    report: Reporter = lambda _: None
    sleep: Callable[[float], None] = time.sleep
    on_statement: StatementDone = lambda *_: None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __post_init__(self) -> None:
        self.conn.autocommit = True
        set_timeouts(
            self.conn,
            lock_timeout=self.options.lock_timeout,
            statement_timeout=self.options.statement_timeout,
        )

    def run(self, step: Step) -> Ran:
        """Run ``step``; return how it ran, or raise once the failure is audited."""
        if step.transactional:
            return self._with_retries(step, lambda: self._in_transaction(step))
        return self._journaled(step)

    def _in_transaction(self, step: Step) -> Ran:
        started = time.monotonic()
        current = step.statements[0] if step.statements else None
        try:
            with self.conn.transaction():
                for current in step.statements:
                    self._execute(current)
                ran = self._finish(step, _ms_since(started))
        except psycopg.errors.LockNotAvailable:
            raise
        except psycopg.Error as exc:
            self._audit_failure(step, exc, _ms_since(started))
            assert current is not None
            raise StatementFailedError(
                step, current, exc, "its transaction was rolled back: nothing was changed"
            ) from None
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
                self._with_retries(step, lambda s=statement: self._execute(s))  # type: ignore[misc]
            except psycopg.Error as exc:
                self._audit_failure(step, exc, _ms_since(started), {"finished": sorted(done)})
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
            ran = self._finish(step, _ms_since(started), {"journal": {"finished": sorted(done)}})
            journal_clear(self.conn, key)
        return ran

    def _finish(self, step: Step, duration: int, details: dict[str, Any] | None = None) -> Ran:
        """The history change and the success audit row, in the caller's transaction."""
        step.finish(self.conn, duration)
        at = self.clock().replace(microsecond=0)
        audit_id = write_audit(
            self.conn, self.audit_table, self._event(step, "success", duration, details, at)
        )
        return Ran(duration, audit_id, at)

    def _execute(self, statement: Statement) -> int:
        started = time.monotonic()
        rows = self.conn.execute(statement.sql).rowcount
        self.on_statement(statement, rows, _ms_since(started))
        return 0

    def _with_retries(self, step: Step, attempt: Callable[[], T]) -> T:
        retries = self.options.lock_retries
        pid = self.conn.info.backend_pid
        for number in range(retries + 1):
            with BlockerWatch(self.lock_conn, pid) as watch:
                try:
                    return attempt()
                except psycopg.errors.LockNotAvailable as exc:
                    blockers = watch.take()
                    if number == retries:
                        self._audit_failure(step, exc, None, {"attempts": number + 1})
                        raise BlockedError(step, blockers, number + 1) from None
            delay = self.options.backoff * 2**number * random.uniform(0.8, 1.2)
            who = "; ".join(b.describe() for b in blockers) or "a session that has finished"
            self.report(
                f"  {step.migration}: lock timeout ({self.options.lock_timeout:g} s), blocked by "
                f"{who}; retry {number + 1}/{retries} in {delay:.1f} s"
            )
            self.sleep(delay)
        raise AssertionError("unreachable")

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
        exc: psycopg.Error,
        duration: int | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """The failure row, in its own transaction on the lock connection (ours may be dead)."""
        event = replace(
            self._event(step, "failure", duration, details),
            sqlstate=exc.sqlstate,
            error=first_line(exc),
        )
        try:
            write_audit(self.lock_conn, self.audit_table, event)
        except psycopg.Error:
            self.report("  (could not write the failure to the audit table)")


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
