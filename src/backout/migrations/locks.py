"""STUB (replaced by the real module on merge)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pglast import parse_sql

from backout.migrations.statements import Statement


class LockMode(StrEnum):
    ACCESS_SHARE = "AccessShareLock"
    ROW_SHARE = "RowShareLock"
    ROW_EXCLUSIVE = "RowExclusiveLock"
    SHARE_UPDATE_EXCLUSIVE = "ShareUpdateExclusiveLock"
    SHARE = "ShareLock"
    SHARE_ROW_EXCLUSIVE = "ShareRowExclusiveLock"
    EXCLUSIVE = "ExclusiveLock"
    ACCESS_EXCLUSIVE = "AccessExclusiveLock"

    @property
    def sql(self) -> str:
        import re

        return re.sub(r"(?<!^)(?=[A-Z])", " ", self.value.removesuffix("Lock")).upper()


def conflicts(held: LockMode, wanted: LockMode) -> bool:
    return held is LockMode.ACCESS_EXCLUSIVE or wanted is LockMode.ACCESS_EXCLUSIVE


@dataclass(frozen=True)
class LockRequest:
    relation: str
    mode: LockMode


def lock_requests(statement: Statement) -> tuple[LockRequest, ...]:
    node = parse_sql(statement.sql)[0].stmt
    kind = type(node).__name__
    if kind == "DropStmt" and node.removeType.name in ("OBJECT_TABLE", "OBJECT_VIEW"):
        return tuple(
            LockRequest(".".join(s.sval for s in o), LockMode.ACCESS_EXCLUSIVE)
            for o in node.objects
        )
    if kind == "AlterTableStmt":
        return (LockRequest(node.relation.relname, LockMode.ACCESS_EXCLUSIVE),)
    return ()
