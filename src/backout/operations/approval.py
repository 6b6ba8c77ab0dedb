"""Who runs a change, who approved it, and the environments that require approval.

An environment marked ``require_approval`` refuses ``apply`` and ``rollback`` unless someone
other than the operator approved it, with a reason; the approval is audited together with the
SHA-256 of the exact SQL it covers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from backout.database.connection import Target
from backout.database.history import AuditEvent, write_audit
from backout.database.runner import sql_sha256
from backout.errors import RefusedError
from backout.migrations.statements import Statement


@dataclass(frozen=True)
class Operator:
    """Who runs the command, who approved it and why (recorded in every audit row)."""

    name: str
    approved_by: str | None = None
    reason: str | None = None
    rehearsal: str | None = None
    """What the rehearsal before a production change showed (``passed``, ``skipped: why``)."""


def check_approval(target: Target, operator: Operator) -> None:
    environment = target.environment
    if environment is None or not environment.require_approval:
        return
    approver, reason = (operator.approved_by or "").strip(), (operator.reason or "").strip()
    if not approver or not reason:
        raise RefusedError(
            f"environment {environment.name!r} requires approval",
            hint="pass --approved-by NAME (someone other than you) and --reason TEXT",
        )
    if approver.lower() in _identities(operator.name):
        raise RefusedError(
            f"{operator.approved_by} cannot approve their own change to {environment.name!r}",
            hint="ask another person to approve it",
        )


def _identities(name: str) -> set[str]:
    """The ways an operator may be named: ``Ada <ada@x>`` is also ``Ada`` and ``ada@x``."""
    lowered = name.strip().lower()
    parts = {lowered}
    if "<" in lowered:
        parts.add(lowered.split("<")[0].strip())
        parts.add(lowered.split("<")[1].rstrip(">").strip())
    if ":" in lowered:
        parts.add(lowered.split(":", 1)[1])
    return parts


def audit_approval(
    conn: psycopg.Connection[Any],
    audit_table: str,
    target: Target,
    action: str,
    migrations: Sequence[str],
    statements: Sequence[Statement],
    operator: Operator,
) -> None:
    """The ``approval`` audit row, with the SHA-256 of the exact SQL approved."""
    if not operator.approved_by:
        return
    write_audit(
        conn,
        audit_table,
        AuditEvent(
            action="approval",
            outcome="success",
            environment=target.name,
            migration=", ".join(migrations),
            operator=operator.name,
            approver=operator.approved_by,
            reason=operator.reason,
            sql_sha256=sql_sha256(statements),
            details={"for": action, "rehearsal": operator.rehearsal},
        ),
    )
