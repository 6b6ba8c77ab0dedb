"""STUB (replaced by the real module on merge)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pglast import parse_sql

from backout.migrations.statements import Statement


class ObjectKind(StrEnum):
    TABLE = "table"
    COLUMN = "table column"
    INDEX = "index"
    CONSTRAINT = "table constraint"
    TRIGGER = "trigger"
    VIEW = "view"
    MATERIALIZED_VIEW = "materialized view"
    SEQUENCE = "sequence"
    FUNCTION = "function"
    PROCEDURE = "procedure"
    TYPE = "type"
    DOMAIN = "domain"
    SCHEMA = "schema"
    FOREIGN_TABLE = "foreign table"
    EXTENSION = "extension"
    RULE = "rule"
    POLICY = "policy"


@dataclass(frozen=True)
class ObjectName:
    kind: ObjectKind
    name: str
    table: str | None = None
    arguments: str | None = None


@dataclass(frozen=True)
class Removal:
    obj: ObjectName
    cascade: bool
    missing_ok: bool


_DROP = {
    "OBJECT_TABLE": ObjectKind.TABLE,
    "OBJECT_VIEW": ObjectKind.VIEW,
    "OBJECT_MATVIEW": ObjectKind.MATERIALIZED_VIEW,
    "OBJECT_INDEX": ObjectKind.INDEX,
    "OBJECT_SEQUENCE": ObjectKind.SEQUENCE,
    "OBJECT_TYPE": ObjectKind.TYPE,
    "OBJECT_SCHEMA": ObjectKind.SCHEMA,
    "OBJECT_TRIGGER": ObjectKind.TRIGGER,
    "OBJECT_FUNCTION": ObjectKind.FUNCTION,
}


def _node(statement: Statement) -> Any:
    return parse_sql(statement.sql)[0].stmt


def _names(obj: Any) -> list[str]:
    if isinstance(obj, tuple):
        return [s.sval for s in obj]
    if hasattr(obj, "objname"):
        return [s.sval for s in obj.objname]
    return [obj.sval]


def removals(statement: Statement) -> tuple[Removal, ...]:
    node = _node(statement)
    kind = type(node).__name__
    found: list[Removal] = []
    if kind == "DropStmt":
        what = _DROP.get(node.removeType.name)
        if what is None:
            return ()
        cascade = node.behavior.name == "DROP_CASCADE"
        for obj in node.objects:
            parts = _names(obj)
            if what is ObjectKind.TRIGGER:
                name = ObjectName(what, parts[-1], ".".join(parts[:-1]))
            elif what is ObjectKind.FUNCTION:
                name = ObjectName(what, ".".join(parts), None, None)
            else:
                name = ObjectName(what, ".".join(parts))
            found.append(Removal(name, cascade, bool(node.missing_ok)))
    if kind == "AlterTableStmt":
        rel = node.relation
        table = f"{rel.schemaname}.{rel.relname}" if rel.schemaname else rel.relname
        for cmd in node.cmds:
            sub = cmd.subtype.name
            cascade = cmd.behavior.name == "DROP_CASCADE"
            if sub == "AT_DropColumn":
                found.append(
                    Removal(ObjectName(ObjectKind.COLUMN, cmd.name, table), cascade, cmd.missing_ok)
                )
            if sub == "AT_DropConstraint":
                found.append(
                    Removal(
                        ObjectName(ObjectKind.CONSTRAINT, cmd.name, table), cascade, cmd.missing_ok
                    )
                )
    return tuple(found)


def creations(statement: Statement) -> tuple[ObjectName, ...]:
    node = _node(statement)
    kind = type(node).__name__
    if kind == "CreateStmt":
        rel = node.relation
        table = f"{rel.schemaname}.{rel.relname}" if rel.schemaname else rel.relname
        return (ObjectName(ObjectKind.TABLE, table),)
    if kind == "ViewStmt":
        rel = node.view
        return (ObjectName(ObjectKind.VIEW, rel.relname),)
    if kind == "CreateTrigStmt":
        rel = node.relation
        return (ObjectName(ObjectKind.TRIGGER, node.trigname, rel.relname),)
    if kind == "AlterTableStmt":
        rel = node.relation
        out = []
        for cmd in node.cmds:
            if cmd.subtype.name == "AT_AddColumn":
                out.append(ObjectName(ObjectKind.COLUMN, cmd.def_.colname, rel.relname))
            if cmd.subtype.name == "AT_AddConstraint" and cmd.def_.conname:
                out.append(ObjectName(ObjectKind.CONSTRAINT, cmd.def_.conname, rel.relname))
        return tuple(out)
    return ()


def identity(obj: ObjectName, schema: str = "public") -> tuple[str, str]:
    def q(name: str) -> str:
        return name if "." in name else f"{schema}.{name}"

    if obj.kind is ObjectKind.COLUMN:
        return (str(obj.kind), f"{q(obj.table or '')}.{obj.name}")
    if obj.kind in (ObjectKind.CONSTRAINT, ObjectKind.TRIGGER, ObjectKind.RULE, ObjectKind.POLICY):
        return (str(obj.kind), f"{obj.name} on {q(obj.table or '')}")
    if obj.kind is ObjectKind.SCHEMA:
        return (str(obj.kind), obj.name)
    return (str(obj.kind), q(obj.name))
