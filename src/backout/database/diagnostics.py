"""What a failed SQL statement says, and what to do next: PostgreSQL's message with its
``DETAIL`` and ``HINT`` on one redacted line, and a next step chosen from the SQLSTATE.

Pure: a psycopg error in, text out. The runner's :class:`StatementFailedError`, the dry run's
``FAILED`` lines and the emergency's timeline all say a failure the same way.
"""

from __future__ import annotations

import psycopg

from backout.database.connection import first_line
from backout.redaction import redact

_NEXT_ROLLBACK = {
    "2BP01": "roll back the later migrations that depend on it first (`backout status` shows "
    "them), or fix the rollback with --rollback-file",
    "42P01": "the object is already gone or was renamed: compare with `backout status` and the "
    "schema, then fix the rollback with --rollback-file",
    "42703": "the column is already gone or was renamed: fix the rollback with --rollback-file",
    "42704": "the object is already gone or was renamed: fix the rollback with --rollback-file",
    "42501": "grant the missing privilege to the role backout connects as, then run it again",
}
_NEXT_APPLY = {
    "42P07": "the object already exists: check `backout status` (it may have been created by "
    "hand; `backout baseline` records that), or fix the migration",
    "42501": "grant the missing privilege to the role backout connects as, then run it again",
}
_NEXT_DEFAULT = {
    "rollback": "fix the cause, or fix the rollback with --rollback-file, and run it again",
    "apply": "fix the cause or the migration (it is not applied yet), and run it again",
}


def explained(exc: psycopg.Error, *urls: str | None) -> str:
    """The server's message, then ``DETAIL: ...`` and ``HINT: ...`` when it gave them, on one
    line, redacted (against ``urls`` too)."""
    diag = exc.diag
    parts = [diag.message_primary or first_line(exc)]
    if diag.message_detail:
        parts.append(f"DETAIL: {_one_line(diag.message_detail)}")
    if diag.message_hint:
        parts.append(f"HINT: {_one_line(diag.message_hint)}")
    return redact("; ".join(_one_line(p) for p in parts), *urls)


def next_step(exc: psycopg.Error, direction: str = "rollback") -> str:
    """What to do about ``exc``, for a statement that was applying or rolling back."""
    chosen = _NEXT_APPLY if direction == "apply" else _NEXT_ROLLBACK
    found = chosen.get(exc.sqlstate or "")
    return found or _NEXT_DEFAULT.get(direction, _NEXT_DEFAULT["rollback"])


def _one_line(text: str) -> str:
    return " ".join(text.split())
