"""A dry run: statements run on the target database in a transaction that is always rolled back.

What ``rollback --dry-run`` and ``emergency --dry-run`` show: each statement's result on the
real database, with nothing kept. (A *rehearsal* is different: it runs on a scratch database;
see :mod:`backout.operations.rehearsal`.) Its waits are bounded like a real run's: each lock
wait lasts at most ``lock_timeout`` (or until more than ``max_queued`` sessions queue behind it)
and is retried, naming the sessions in the way, then the dry run gives up (exit 5), so it never
queues for long in front of other sessions' plain reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from backout.database.connection import DatabaseError, first_line
from backout.database.diagnostics import explained, next_step
from backout.database.waits import Waits, bounded
from backout.migrations.statements import Statement
from backout.migrations.transaction_control import refuse_transaction_control

FAILED = "FAILED  "
"""How a dry run's line for a statement that failed starts."""


def failed(lines: Sequence[str]) -> bool:
    """Whether any statement of a dry run's ``lines`` failed."""
    return any(line.startswith(FAILED) for line in lines)


def dry_run(
    conn: psycopg.Connection[Any], statements: Sequence[Statement], waits: Waits | None = None
) -> list[str]:
    """One line per statement, ``ok`` or ``FAILED`` with the server's message; nothing kept.

    Transaction control (a ``COMMIT`` would end the transaction that is always rolled back)
    is refused before anything runs, whatever the caller checked before.
    """
    refuse_transaction_control(statements)
    waits = waits or Waits()
    try:
        return waits.retrying(conn, "the dry run", lambda: _attempt(conn, statements, waits))
    except psycopg.Error as exc:
        raise DatabaseError(f"the dry run could not finish: {first_line(exc)}") from None


def _attempt(
    conn: psycopg.Connection[Any], statements: Sequence[Statement], waits: Waits
) -> list[str]:
    """Every statement, in one transaction that is rolled back; a lock timeout ends it all."""
    with bounded(conn, waits.options, statements=True, force_rollback=True):
        return [_try(conn, statement, waits) for statement in statements]


def _try(conn: psycopg.Connection[Any], statement: Statement, waits: Waits) -> str:
    try:
        with conn.transaction():  # a savepoint: a failure does not hide the rest
            conn.execute(statement.sql)
    except psycopg.Error as exc:
        if waits.gives_up(exc):
            raise  # not the statement's failure: the whole attempt is retried
        return f"{FAILED}line {statement.line}: {explained(exc)}; next: {next_step(exc)}"
    return f"ok      line {statement.line}: {' '.join(statement.sql.split())}"
