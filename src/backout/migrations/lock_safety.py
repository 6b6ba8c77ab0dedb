"""Lock safety: statements that hold a lock on a table in use for longer than they need to.

Pure: read from each statement's parse tree (parsed once) and from what the same section did
before it, never from a database. Every hazard is about an *existing* table: one the section
has not created before the statement. A table an earlier migration created is existing (in
production it has rows and traffic by the time this one runs); for the rollback section, so
is every table the forward section created.

The rule ids and their severities are declared with the other lint rules
(:data:`backout.migrations.lint.RULES`); this module only finds the hazards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from backout.migrations.locks import LockMode, requests_in
from backout.migrations.objects import ObjectKind, created_in
from backout.migrations.parse_tree import (
    Node,
    parse,
    qualified,
    relation,
    split_qualified,
    strings,
    unwrap,
)
from backout.migrations.statements import Statement

LOCK_TIMEOUT = "lock-timeout"
INDEX = "index-not-concurrent"
REWRITE = "rewrite-column-type"
VOLATILE = "volatile-default"
SCAN = "scan-under-lock"
ENUM = "enum-value-in-transaction"
RENAME = "rename"
RULE_IDS = (LOCK_TIMEOUT, INDEX, REWRITE, VOLATILE, SCAN, ENUM, RENAME)


@dataclass(frozen=True)
class Hazard:
    rule: str
    line: int
    """The statement's first line."""
    message: str


@dataclass(frozen=True)
class Parsed:
    """A statement that may take a lock worth a warning, with its parse tree."""

    statement: Statement
    kind: str
    node: Node


_MAY_LOCK = re.compile(
    r"^\s*(alter|drop|set|reset|lock|truncate|cluster|vacuum|reindex|refresh|select|"
    r"create\s+(?!(or\s+replace\s+)?(function|procedure|trigger|view|type|domain)\b))",
    re.IGNORECASE,
)
"""First words of the statements a rule looks at (``SELECT ... INTO`` creates a table); the
others (DML, functions, grants, comments) are never parsed again."""


def parsed(statements: Iterable[Statement]) -> list[Parsed]:
    """The statements a rule may look at, each parsed once."""
    return [Parsed(s, *parse(s.sql)) for s in statements if _MAY_LOCK.match(s.sql)]


def index_tables(section: Iterable[Parsed]) -> dict[str, str]:
    """``{index: table}`` for each index the section creates by name."""
    return {
        key(obj.name): key(relation(p.node["relation"]))
        for p in section
        if p.kind == "IndexStmt"
        for obj in created_in(p.kind, p.node)
    }


def key(name: str) -> str:
    """A relation's name for comparison: ``public.jobs`` and ``jobs`` are the same table."""
    parts = split_qualified(name)
    return qualified(parts[1:]) if len(parts) == 2 and parts[0] == "public" else name


@dataclass
class _Section:
    """What a section did so far: the relations it created, its ``lock_timeout``."""

    created: set[str] = field(default_factory=set)
    timeout: bool = False
    indexes: Mapping[str, str] = field(default_factory=dict)
    dropped: frozenset[str] = frozenset()

    def existing(self, name: str) -> bool:
        return key(name) not in self.created


_CREATED_RELATIONS = frozenset(
    {ObjectKind.TABLE, ObjectKind.INDEX, ObjectKind.MATERIALIZED_VIEW, ObjectKind.FOREIGN_TABLE}
)


_SETTING = re.compile(r"^\s*(set|reset)\b", re.IGNORECASE)


def shares_transaction(statements: Sequence[Statement], *, transactional: bool) -> bool:
    """Whether a section runs in one transaction with more than one statement that is not a
    ``SET``."""
    return transactional and sum(1 for s in statements if not _SETTING.match(s.sql)) > 1


def hazards(
    section: Sequence[Parsed],
    *,
    shared: bool,
    require_timeout: bool,
    indexes: Mapping[str, str] | None = None,
) -> Iterator[Hazard]:
    """The hazards of one section, in order. ``shared``: the section runs in one transaction
    with other statements (:func:`shares_transaction`); ``require_timeout``: it must set
    ``lock_timeout`` itself; ``indexes``: the tables of indexes the file creates
    (:func:`index_tables`), for ``DROP INDEX``."""
    state = _Section(indexes=indexes or {}, dropped=frozenset(_dropped_tables(section)))
    for p in section:
        if p.kind == "VariableSetStmt":
            state.timeout = _sets_timeout(p.node, state.timeout)
            continue
        if require_timeout and not state.timeout:
            yield from _without_timeout(p, state)
        check = _CHECKS.get(p.kind)
        if check is not None:
            yield from check(p, state)
        if p.kind == "AlterEnumStmt" and shared and p.node.get("newVal"):
            yield _enum_value(p)
        state.created |= {
            key(obj.name) for obj in created_in(p.kind, p.node) if obj.kind in _CREATED_RELATIONS
        }


def _sets_timeout(node: Node, before: bool) -> bool:
    """``SET [LOCAL] lock_timeout = '2s'`` sets it; ``= 0``, ``DEFAULT`` or ``RESET`` do not."""
    if node.get("name") != "lock_timeout":
        return before
    if node.get("kind") != "VAR_SET_VALUE" or not node.get("args"):
        return False
    const = unwrap(node["args"][0])
    value = const.get("sval", {}).get("sval") if "sval" in const else const.get("ival", {})
    if isinstance(value, dict):
        value = value.get("ival", 0)
    return str(value).strip().lower() not in ("", "0", "0ms", "0s", "0min")


def _dropped_tables(section: Iterable[Parsed]) -> Iterator[str]:
    for p in section:
        if p.kind == "DropStmt" and p.node.get("removeType") == "OBJECT_TABLE":
            for obj in p.node.get("objects", ()):
                yield key(qualified(strings(unwrap(obj).get("items", ()))))


def _without_timeout(p: Parsed, state: _Section) -> Iterator[Hazard]:
    locked = [
        r.relation
        for r in requests_in(p.kind, p.node)
        if r.mode is LockMode.ACCESS_EXCLUSIVE and state.existing(r.relation)
    ]
    if locked:
        yield Hazard(
            LOCK_TIMEOUT,
            p.statement.line,
            f"takes ACCESS EXCLUSIVE on {', '.join(locked)} with no lock_timeout: while it "
            "waits for a long query, every read and write of the table queues behind it; "
            "this folder's SQL sets its own, so put `SET LOCAL lock_timeout = '5s';` before it",
        )


def _index(p: Parsed, state: _Section) -> Iterator[Hazard]:
    table = relation(p.node["relation"])
    if not p.node.get("concurrent") and state.existing(table):
        yield Hazard(
            INDEX,
            p.statement.line,
            f"CREATE INDEX on {table} without CONCURRENTLY blocks every write to it while the "
            "index builds; use CREATE INDEX CONCURRENTLY, in a migration of its own",
        )


def _drop_index(p: Parsed, state: _Section) -> Iterator[Hazard]:
    if p.node.get("removeType") != "OBJECT_INDEX" or p.node.get("concurrent"):
        return
    for obj in p.node.get("objects", ()):
        name = qualified(strings(unwrap(obj).get("items", ())))
        table = state.indexes.get(key(name))
        if not state.existing(name) or (table is not None and table in state.dropped):
            continue  # new, or its table goes in the same section anyway
        yield Hazard(
            INDEX,
            p.statement.line,
            f"DROP INDEX {name} without CONCURRENTLY takes ACCESS EXCLUSIVE on its table, "
            "blocking reads too; use DROP INDEX CONCURRENTLY, in a migration of its own",
        )


def _alter_table(p: Parsed, state: _Section) -> Iterator[Hazard]:
    table = relation(p.node["relation"])
    if not state.existing(table):
        return
    for cmd in map(unwrap, p.node.get("cmds", ())):
        subtype = cmd.get("subtype")
        definition = cmd.get("def") or {}
        if subtype == "AT_AlterColumnType":
            yield Hazard(REWRITE, p.statement.line, _rewrite_message(table, str(cmd["name"])))
        elif subtype == "AT_AddColumn" and "ColumnDef" in definition:
            why = _volatile(definition["ColumnDef"])
            if why:
                yield Hazard(VOLATILE, p.statement.line, _volatile_message(table, why))
        elif subtype == "AT_SetNotNull":
            yield Hazard(SCAN, p.statement.line, _not_null_message(table, str(cmd["name"])))
        elif subtype == "AT_AddConstraint" and "Constraint" in definition:
            why = _scans(definition["Constraint"])
            if why:
                yield Hazard(SCAN, p.statement.line, f"{why} on {table}: {_SCAN_ADVICE[why]}")


def _rewrite_message(table: str, column: str) -> str:
    return (
        f"changing the type of {table}.{column} rewrites the table and its indexes under "
        "ACCESS EXCLUSIVE, unless the new type is binary-coercible from the old (varchar(n) "
        "to text or a longer varchar...); add a new column, backfill it, then switch over"
    )


_VOLATILE_FUNCTIONS = frozenset(
    """random gen_random_uuid uuid_generate_v1 uuid_generate_v1mc uuid_generate_v4 uuidv4
    uuidv7 clock_timestamp timeofday nextval txid_current setseed""".split()
)
_SERIAL = frozenset({"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"})


def _volatile(column: Node) -> str | None:
    """Why adding ``column`` rewrites the table, or ``None`` (a constant or stable default is
    stored in the catalog once)."""
    names = strings(column.get("typeName", {}).get("names", ()))
    if names and names[-1] in _SERIAL:
        return f"type {names[-1]} (a nextval() default)"
    for constraint in map(unwrap, column.get("constraints", ())):
        contype = constraint.get("contype")
        if contype == "CONSTR_IDENTITY":
            return "GENERATED ... AS IDENTITY (a value from a sequence)"
        if contype == "CONSTR_GENERATED" and constraint.get("generated_kind") == "s":
            return "GENERATED ... STORED"
        if contype == "CONSTR_DEFAULT":
            called = _functions(constraint.get("raw_expr"))
            volatile = sorted(called & _VOLATILE_FUNCTIONS)
            if volatile:
                return f"a default that calls {volatile[0]}(), a volatile function"
    return None


def _functions(tree: object) -> set[str]:
    found: set[str] = set()
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "funcname" in item:
                found.add(strings(item["funcname"])[-1].lower())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _volatile_message(table: str, why: str) -> str:
    return (
        f"ADD COLUMN with {why} rewrites {table} under ACCESS EXCLUSIVE, computing a value "
        "for every row; add the column without it, then fill existing rows in batches"
    )


def _not_null_message(table: str, column: str) -> str:
    return (
        f"SET NOT NULL on {table}.{column} scans the whole table under ACCESS EXCLUSIVE; "
        f"first add CHECK ({column} IS NOT NULL) NOT VALID and VALIDATE it in another "
        "transaction: PostgreSQL then skips the scan"
    )


_SCAN_ADVICE = {
    "ADD CONSTRAINT ... CHECK without NOT VALID": "every row is checked under ACCESS "
    "EXCLUSIVE; add it NOT VALID, then VALIDATE CONSTRAINT in another transaction (a weaker "
    "lock)",
    "ADD CONSTRAINT ... FOREIGN KEY without NOT VALID": "every row is checked while both "
    "tables are locked against writes; add it NOT VALID, then VALIDATE CONSTRAINT in another "
    "transaction",
    "ADD PRIMARY KEY or UNIQUE without USING INDEX": "the index is built under ACCESS "
    "EXCLUSIVE; build it first with CREATE UNIQUE INDEX CONCURRENTLY, then add the "
    "constraint USING INDEX",
    "ADD CONSTRAINT ... EXCLUDE": "the index is built and every row checked under ACCESS "
    "EXCLUSIVE; there is no concurrent way: run it when the table is quiet",
}


def _scans(constraint: Node) -> str | None:
    contype = constraint.get("contype")
    if contype in ("CONSTR_CHECK", "CONSTR_FOREIGN") and not constraint.get("skip_validation"):
        what = "CHECK" if contype == "CONSTR_CHECK" else "FOREIGN KEY"
        return f"ADD CONSTRAINT ... {what} without NOT VALID"
    if contype in ("CONSTR_PRIMARY", "CONSTR_UNIQUE") and not constraint.get("indexname"):
        return "ADD PRIMARY KEY or UNIQUE without USING INDEX"
    if contype == "CONSTR_EXCLUSION":
        return "ADD CONSTRAINT ... EXCLUDE"
    return None


def _enum_value(p: Parsed) -> Hazard:
    name = qualified(strings(p.node.get("typeName", ())))
    return Hazard(
        ENUM,
        p.statement.line,
        f"ALTER TYPE {name} ADD VALUE shares its transaction with other statements: none of "
        "them can use the new value before it commits, and a failure undoes it with them; "
        "put it in a migration of its own",
    )


def _rename(p: Parsed, state: _Section) -> Iterator[Hazard]:
    what = p.node.get("renameType")
    if what not in ("OBJECT_TABLE", "OBJECT_COLUMN") or not p.node.get("relation"):
        return
    if what == "OBJECT_COLUMN" and p.node.get("relationType") != "OBJECT_TABLE":
        return
    table = relation(p.node["relation"])
    if not state.existing(table):
        return
    old = f"{table}.{p.node.get('subname')}" if what == "OBJECT_COLUMN" else table
    yield Hazard(
        RENAME,
        p.statement.line,
        f"renaming {old} to {p.node.get('newname')} breaks the code still running that uses "
        "the old name; add the new name beside the old (a view, or a new column kept in "
        "sync), move the code over, then drop the old one",
    )


_CHECKS = {
    "IndexStmt": _index,
    "DropStmt": _drop_index,
    "AlterTableStmt": _alter_table,
    "RenameStmt": _rename,
}
