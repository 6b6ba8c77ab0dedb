"""Smoke checks: the project's own SQL checks, run after ``apply``, ``rollback`` and
``emergency`` on the database they changed.

A check passes when its query runs and the first value of its first row is true (or any value
but NULL, false and 0): ``SELECT count(*) > 0 FROM markets``, ``SELECT NOT EXISTS (...)``. Each
runs in a read-only transaction that is always rolled back, under a statement timeout. The
results go to the output, an audit row (``smoke_check``) and, for an emergency, the postmortem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from backout.config import SmokeCheck
from backout.database.connection import Target
from backout.database.history import AuditEvent, ensure_audit, write_audit
from backout.operations.approval import Operator

STATEMENT_TIMEOUT = "10s"


@dataclass(frozen=True)
class SmokeResult:
    name: str
    ok: bool
    detail: str

    def describe(self) -> str:
        return f"smoke check {self.name!r}: {'ok' if self.ok else 'FAILED'} ({self.detail})"


def run_smoke_checks(
    conn: psycopg.Connection[Any], checks: Sequence[SmokeCheck]
) -> list[SmokeResult]:
    """Each check on ``conn`` (autocommit), in a read-only transaction always rolled back."""
    results = []
    for check in checks:
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("SET TRANSACTION READ ONLY")
                conn.execute(
                    "SELECT set_config('statement_timeout', %s, true)", (STATEMENT_TIMEOUT,)
                )
                row = conn.execute(sql.SQL(check.sql)).fetchone()
        except psycopg.Error as exc:
            results.append(SmokeResult(check.name, False, str(exc).strip().splitlines()[0]))
            continue
        value = row[0] if row else None
        ok = value not in (None, False, 0)
        results.append(SmokeResult(check.name, ok, f"returned {value!r}"))
    return results


def audit_smoke(
    conn: psycopg.Connection[Any],
    audit_table: str,
    target: Target,
    operator: Operator,
    after: str,
    migrations: Sequence[str],
    results: Sequence[SmokeResult],
) -> None:
    """One ``smoke_check`` audit row with every result."""
    if not results:
        return
    ensure_audit(conn, audit_table)
    write_audit(
        conn,
        audit_table,
        AuditEvent(
            action="smoke_check",
            outcome="success" if all(r.ok for r in results) else "failure",
            environment=target.name,
            migration=", ".join(migrations),
            operator=operator.name,
            details={
                "after": after,
                "checks": [{"name": r.name, "ok": r.ok, "detail": r.detail} for r in results],
            },
        ),
    )
