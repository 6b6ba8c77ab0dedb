"""A dry run: statements run on the target database in a transaction that is always rolled back.

What ``rollback --dry-run`` and ``emergency --dry-run`` show: each statement's result on the
real database, with nothing kept. (A *rehearsal* is different: it runs on a scratch database;
see :mod:`backout.operations.rehearsal`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from backout.database.connection import DatabaseError, first_line
from backout.migrations.statements import Statement
from backout.migrations.transaction_control import refuse_transaction_control


def dry_run(conn: psycopg.Connection[Any], statements: Sequence[Statement]) -> list[str]:
    """One line per statement, ``ok`` or ``FAILED`` with the server's message; nothing kept.

    Transaction control (a ``COMMIT`` would end the transaction that is always rolled back)
    is refused before anything runs, whatever the caller checked before.
    """
    refuse_transaction_control(statements)
    lines = []
    try:
        with conn.transaction(force_rollback=True):
            for statement in statements:
                lines.append(_try(conn, statement))
    except psycopg.Error as exc:
        raise DatabaseError(f"the dry run could not finish: {first_line(exc)}") from None
    return lines


def _try(conn: psycopg.Connection[Any], statement: Statement) -> str:
    try:
        with conn.transaction():  # a savepoint: a failure does not hide the rest
            conn.execute(statement.sql)
    except psycopg.Error as exc:
        message = exc.diag.message_primary or first_line(exc)
        return f"FAILED  line {statement.line}: {message}"
    return f"ok      line {statement.line}: {' '.join(statement.sql.split())}"
