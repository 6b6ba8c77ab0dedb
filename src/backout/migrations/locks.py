"""The table-level locks a statement takes, read from its parse tree alone.

Pure: the modes come from PostgreSQL's documentation ("Explicit Locking" and each command's
page) and its source (``AlterTableGetLockLevel``), not from a database. A relation is named as
the statement names it, schema-qualified when the statement qualifies it, each part quoted as
``quote_ident`` would (``public.events``, ``"Mixed Case"``): the text ``to_regclass()`` reads.

What the parse tree cannot tell, and so is not predicted:

- ``DROP INDEX`` and ``REINDEX INDEX`` also lock the index's table (``ACCESS EXCLUSIVE`` and
  ``SHARE``); only the index is named, so only the index is predicted.
- Locks taken because of what is in the database: the tables a dropped table's foreign keys
  reference, the indexes of a table, the partitions of a partitioned table, what ``CASCADE``
  reaches, the tables a trigger or a rule touches, the default partition an ``ATTACH`` scans.
- ``CREATE VIEW``, ``CREATE TABLE AS`` and DML do take ``ACCESS SHARE`` on the tables they
  read and that is predicted, but a function called in the query is opaque.
- Statements that lock no relation by name (``DROP SCHEMA``, ``DROP TYPE``, ``VACUUM`` without
  a table), and statements not listed here, give no request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from backout.migrations.parse_tree import (
    Node,
    cte_names,
    parse,
    qualified,
    rangevars,
    relation,
    strings,
    unwrap,
)
from backout.migrations.statements import Statement


class LockMode(StrEnum):
    """A table-level lock mode; the values are what ``pg_locks.mode`` shows, weakest first."""

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
        """The mode as ``LOCK TABLE ... IN ... MODE`` writes it: ``ACCESS EXCLUSIVE``."""
        return self.name.replace("_", " ")

    @property
    def strength(self) -> int:
        """PostgreSQL's number for the mode (1 to 8): the highest is the strongest."""
        return _ORDER.index(self) + 1


_ORDER = tuple(LockMode)


def _modes(words: str) -> frozenset[LockMode]:
    return frozenset(LockMode[word] for word in words.split())


_CONFLICTS = {
    LockMode.ACCESS_SHARE: _modes("ACCESS_EXCLUSIVE"),
    LockMode.ROW_SHARE: _modes("EXCLUSIVE ACCESS_EXCLUSIVE"),
    LockMode.ROW_EXCLUSIVE: _modes("SHARE SHARE_ROW_EXCLUSIVE EXCLUSIVE ACCESS_EXCLUSIVE"),
    LockMode.SHARE_UPDATE_EXCLUSIVE: _modes(
        "SHARE_UPDATE_EXCLUSIVE SHARE SHARE_ROW_EXCLUSIVE EXCLUSIVE ACCESS_EXCLUSIVE"
    ),
    LockMode.SHARE: _modes(
        "ROW_EXCLUSIVE SHARE_UPDATE_EXCLUSIVE SHARE_ROW_EXCLUSIVE EXCLUSIVE ACCESS_EXCLUSIVE"
    ),
    LockMode.SHARE_ROW_EXCLUSIVE: _modes(
        "ROW_EXCLUSIVE SHARE_UPDATE_EXCLUSIVE SHARE SHARE_ROW_EXCLUSIVE EXCLUSIVE ACCESS_EXCLUSIVE"
    ),
    LockMode.EXCLUSIVE: frozenset(LockMode) - {LockMode.ACCESS_SHARE},
    LockMode.ACCESS_EXCLUSIVE: frozenset(LockMode),
}
"""PostgreSQL's table of conflicting lock modes ("Explicit Locking", table 13.2)."""


def conflicts(held: LockMode, wanted: LockMode) -> bool:
    """Whether a session asking for ``wanted`` waits for one that holds ``held``."""
    return wanted in _CONFLICTS[held]


@dataclass(frozen=True)
class LockRequest:
    """A lock a statement takes on a relation."""

    relation: str
    """As the statement names it, quoted as ``quote_ident`` would: ``app.orders``."""
    mode: LockMode


def lock_requests(statement: Statement) -> tuple[LockRequest, ...]:
    """The strongest mode per relation ``statement`` locks, in order of first appearance."""
    return requests_in(*parse(statement.sql))


def requests_in(kind: str, node: Node) -> tuple[LockRequest, ...]:
    """:func:`lock_requests` of a statement already parsed (:func:`~.parse_tree.parse`)."""
    handler = _HANDLERS.get(kind)
    if handler is None:
        return ()
    strongest: dict[str, LockMode] = {}
    for name, mode in handler(node):
        held = strongest.get(name)
        if held is None or mode.strength > held.strength:
            strongest[name] = mode
    return tuple(LockRequest(name, mode) for name, mode in strongest.items())


_Wanted = Iterable[tuple[str, LockMode]]

AE = LockMode.ACCESS_EXCLUSIVE
SUE = LockMode.SHARE_UPDATE_EXCLUSIVE
SRE = LockMode.SHARE_ROW_EXCLUSIVE

_DROPPED_RELATIONS = frozenset(
    {"OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_SEQUENCE", "OBJECT_FOREIGN_TABLE"}
)
_ON_TABLE = frozenset({"OBJECT_TRIGGER", "OBJECT_RULE", "OBJECT_POLICY"})
"""Objects named ``name ON table``: the tree lists the table's parts, then the name."""


def _drop(node: Node) -> _Wanted:
    remove = node.get("removeType")
    names = [strings(unwrap(obj).get("items", ())) for obj in node.get("objects", ())]
    if remove == "OBJECT_INDEX":
        mode = SUE if node.get("concurrent") else AE
        return [(qualified(parts), mode) for parts in names]
    if remove in _DROPPED_RELATIONS:
        return [(qualified(parts), AE) for parts in names]
    if remove in _ON_TABLE:
        return [(qualified(parts[:-1]), AE) for parts in names]
    return ()


def _truncate(node: Node) -> _Wanted:
    return [(relation(rel), AE) for rel in node.get("relations", ())]


def _alter_table(node: Node) -> _Wanted:
    """``ALTER TABLE`` (and ``ALTER INDEX``, ``VIEW``...): the strongest subcommand's mode."""
    mode = SUE  # AlterTableGetLockLevel starts from the weakest mode it ever takes
    others: list[tuple[str, LockMode]] = []
    for cmd in map(unwrap, node.get("cmds", ())):
        wanted = _subcommand_mode(cmd)
        mode = wanted if wanted.strength > mode.strength else mode
        others.extend(_subcommand_others(cmd))
    return [(relation(node["relation"]), mode), *others]


_SUBCOMMAND_MODES = {
    **dict.fromkeys(
        "AT_SetStatistics AT_ClusterOn AT_DropCluster AT_SetOptions AT_ResetOptions "
        "AT_ValidateConstraint AT_AttachPartition AT_DetachPartitionFinalize".split(),
        SUE,
    ),
    **dict.fromkeys(
        "AT_EnableTrig AT_EnableAlwaysTrig AT_EnableReplicaTrig AT_EnableTrigAll "
        "AT_EnableTrigUser AT_DisableTrig AT_DisableTrigAll AT_DisableTrigUser".split(),
        SRE,
    ),
}
"""Subcommands weaker than ``ACCESS EXCLUSIVE``, PostgreSQL's default for the others."""

_EXCLUSIVE_OPTIONS = frozenset(
    {"user_catalog_table", "fastupdate", "buffering", "security_barrier", "security_invoker"}
    | {"check_option"}
)
"""Storage parameters whose change takes ``ACCESS EXCLUSIVE``; the others take
``SHARE UPDATE EXCLUSIVE`` (``fillfactor``, ``autovacuum_*``, ``parallel_workers``...)."""


def _subcommand_mode(cmd: Node) -> LockMode:
    subtype = cmd.get("subtype")
    definition = cmd.get("def") or {}
    if subtype == "AT_AddConstraint":
        constraint = definition.get("Constraint", {})
        return SRE if constraint.get("contype") == "CONSTR_FOREIGN" else AE
    if subtype in ("AT_SetRelOptions", "AT_ResetRelOptions"):
        options = {unwrap(item).get("defname") for item in unwrap(definition).get("items", ())}
        return AE if options & _EXCLUSIVE_OPTIONS else SUE
    if subtype == "AT_DetachPartition":
        return SUE if definition.get("PartitionCmd", {}).get("concurrent") else AE
    return _SUBCOMMAND_MODES.get(str(subtype), AE)


def _subcommand_others(cmd: Node) -> _Wanted:
    """Other relations a subcommand locks: a foreign key's table, a partition."""
    definition = cmd.get("def") or {}
    if "PartitionCmd" in definition:
        partition = definition["PartitionCmd"]
        mode = SUE if partition.get("concurrent") else AE
        return [(relation(partition["name"]), mode)]
    constraints = [definition] if "Constraint" in definition else []
    constraints += definition.get("ColumnDef", {}).get("constraints", [])
    return _referenced(constraints)


def _referenced(constraints: Iterable[Node]) -> _Wanted:
    """``REFERENCES t``: ``SHARE ROW EXCLUSIVE`` on ``t``, to add the triggers that check it."""
    return [
        (relation(body["pktable"]), SRE)
        for body in map(unwrap, constraints)
        if body.get("contype") == "CONSTR_FOREIGN"
    ]


def _create_table(node: Node) -> _Wanted:
    """``PARTITION OF`` locks the parent exclusively, ``INHERITS`` less, ``LIKE`` only reads."""
    wanted: list[tuple[str, LockMode]] = []
    parent_mode = AE if node.get("partbound") else SUE
    wanted += [(relation(parent), parent_mode) for parent in node.get("inhRelations", ())]
    for element in node.get("tableElts", ()):
        kind, body = next(iter(element.items()))
        if kind == "TableLikeClause":
            wanted.append((relation(body["relation"]), LockMode.ACCESS_SHARE))
        elif kind == "ColumnDef":
            wanted += _referenced(body.get("constraints", ()))
        elif kind == "Constraint":
            wanted += _referenced([element])
    return wanted


def _create_index(node: Node) -> _Wanted:
    return [(relation(node["relation"]), SUE if node.get("concurrent") else LockMode.SHARE)]


def _on_relation(mode: LockMode, key: str = "relation") -> Callable[[Node], _Wanted]:
    """A handler for statements that take ``mode`` on the one relation in ``node[key]``."""

    def handler(node: Node) -> _Wanted:
        return [(relation(node[key]), mode)] if node.get(key) else ()

    return handler


_COMMENTED_RELATIONS = frozenset(
    {"OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_INDEX", "OBJECT_SEQUENCE"}
    | {"OBJECT_FOREIGN_TABLE"}
)
_COMMENTED_ON_TABLE = frozenset({"OBJECT_TABCONSTRAINT"}) | _ON_TABLE


def _comment(node: Node) -> _Wanted:
    """``COMMENT ON`` a relation or a column: ``SHARE UPDATE EXCLUSIVE`` on the relation; on a
    constraint, trigger, rule or policy the lock is on that object, the table is only read."""
    objtype = node.get("objtype")
    parts = strings(unwrap(node.get("object") or {}).get("items", ()))
    if objtype in _COMMENTED_RELATIONS:
        return [(qualified(parts), SUE)]
    if objtype == "OBJECT_COLUMN":
        return [(qualified(parts[:-1]), SUE)]
    if objtype in _COMMENTED_ON_TABLE:
        return [(qualified(parts[:-1]), LockMode.ACCESS_SHARE)]
    return ()


def _lock(node: Node) -> _Wanted:
    mode = _ORDER[int(node.get("mode", AE.strength)) - 1]
    return [(relation(rel), mode) for rel in node.get("relations", ())]


def _refresh(node: Node) -> _Wanted:
    mode = LockMode.EXCLUSIVE if node.get("concurrent") else AE
    return [(relation(node["relation"]), mode)]


def _vacuum(node: Node) -> _Wanted:
    """``VACUUM`` and ``ANALYZE``: ``SHARE UPDATE EXCLUSIVE``; ``VACUUM FULL`` rewrites."""
    full = any(
        unwrap(option).get("defname") == "full" and _enabled(unwrap(option))
        for option in node.get("options", ())
    )
    mode = AE if full and node.get("is_vacuumcmd") else SUE
    return [(relation(unwrap(rel)["relation"]), mode) for rel in node.get("rels", ())]


def _enabled(option: Node) -> bool:
    """A boolean option's value: ``FULL``, ``FULL true``, ``FULL on``, ``FULL 1`` are on."""
    value = unwrap(option.get("arg") or {"Boolean": {"boolval": True}})
    if "sval" in value:
        return str(value["sval"]).lower() in ("on", "true", "yes", "1")
    return bool(value.get("boolval") or value.get("ival"))


def _reindex(node: Node) -> _Wanted:
    """``REINDEX TABLE`` takes ``SHARE`` on the table, ``REINDEX INDEX`` ``ACCESS EXCLUSIVE``
    on the index; ``CONCURRENTLY``, ``SHARE UPDATE EXCLUSIVE`` on either."""
    concurrent = any(
        unwrap(param).get("defname") == "concurrently" and _enabled(unwrap(param))
        for param in node.get("params", ())
    )
    if not node.get("relation"):
        return ()
    kind = node.get("kind")
    if kind not in ("REINDEX_OBJECT_TABLE", "REINDEX_OBJECT_INDEX"):
        return ()
    mode = LockMode.SHARE if kind == "REINDEX_OBJECT_TABLE" else AE
    return [(relation(node["relation"]), SUE if concurrent else mode)]


_RENAMED_ON_RELATION = frozenset(
    {"OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_SEQUENCE", "OBJECT_FOREIGN_TABLE"}
    | {"OBJECT_COLUMN", "OBJECT_TABCONSTRAINT", "OBJECT_TRIGGER", "OBJECT_RULE", "OBJECT_POLICY"}
)


def _rename(node: Node) -> _Wanted:
    """``ALTER ... RENAME``: ``ACCESS EXCLUSIVE``, but an index's new name needs less."""
    rename = node.get("renameType")
    if not node.get("relation"):
        return ()
    if rename == "OBJECT_INDEX":
        return [(relation(node["relation"]), SUE)]
    if rename in _RENAMED_ON_RELATION:
        return [(relation(node["relation"]), AE)]
    return ()


def _copy(node: Node) -> _Wanted:
    if not node.get("relation"):
        return _dml(node.get("query") or {})
    mode = LockMode.ROW_EXCLUSIVE if node.get("is_from") else LockMode.ACCESS_SHARE
    return [(relation(node["relation"]), mode)]


def _statistics(node: Node) -> _Wanted:
    return [(relation(rel), SUE) for rel in node.get("relations", ()) if "RangeVar" in rel]


def _reads(key: str) -> Callable[[Node], _Wanted]:
    """A handler for ``CREATE VIEW``/``TABLE AS``: ``ACCESS SHARE`` on what ``node[key]`` reads."""

    def handler(node: Node) -> _Wanted:
        return _dml(node.get(key) or {})

    return handler


_DML = frozenset({"SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"})


def _dml(tree: Node) -> _Wanted:
    """Queries, anywhere in ``tree``: ``ROW EXCLUSIVE`` on what they write, ``ROW SHARE`` on
    what ``FOR UPDATE``/``FOR SHARE`` locks, ``ACCESS SHARE`` on what they only read; in the
    order the statement names them. ``WITH`` queries' names are not relations."""
    ctes = cte_names(tree)
    wanted = [(rel, LockMode.ACCESS_SHARE) for rel in rangevars(_without_into(tree))]
    wanted += [(rel, LockMode.ROW_EXCLUSIVE) for rel in _written(tree)]
    wanted += [(rel, LockMode.ROW_SHARE) for rel in _row_locked(tree)]
    wanted.sort(key=lambda item: int(item[0].get("location", -1)))
    return [
        (relation(rel), mode)
        for rel, mode in wanted
        if rel.get("schemaname") or rel.get("relname") not in ctes
    ]


def _query(kind: str) -> Callable[[Node], _Wanted]:
    """A handler for a query of ``kind`` (``UpdateStmt``...): :func:`_dml` of it."""

    def handler(node: Node) -> _Wanted:
        return _dml({kind: node})

    return handler


def _without_into(tree: Node) -> Node:
    """``SELECT ... INTO t``: ``t`` is created, not read."""
    select = tree.get("SelectStmt")
    if select and "intoClause" in select:
        return {key: value for key, value in select.items() if key != "intoClause"}
    return tree


def _written(tree: Any) -> Iterator[Node]:
    for name, body in _nodes(tree):
        if name in ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"):
            yield body["relation"]


def _row_locked(tree: Any) -> Iterator[Node]:
    for name, body in _nodes(tree):
        if name != "SelectStmt" or not body.get("lockingClause"):
            continue
        for clause in map(unwrap, body["lockingClause"]):
            locked = clause.get("lockedRels")
            yield from map(unwrap, locked) if locked else rangevars(body.get("fromClause"))


def _nodes(tree: Any) -> Iterator[tuple[str, Node]]:
    """Every ``{"Name": {...}}`` node in ``tree``, as ``(name, body)``."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key[:1].isupper() and isinstance(value, dict):
                yield key, value
            yield from _nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _nodes(value)


_HANDLERS: dict[str, Callable[[Node], _Wanted]] = {
    "DropStmt": _drop,
    "TruncateStmt": _truncate,
    "AlterTableStmt": _alter_table,
    "CreateStmt": _create_table,
    "IndexStmt": _create_index,
    "CreateTrigStmt": _on_relation(SRE),
    "RuleStmt": _on_relation(AE),
    "CreatePolicyStmt": _on_relation(AE, "table"),
    "AlterPolicyStmt": _on_relation(AE, "table"),
    "CommentStmt": _comment,
    "LockStmt": _lock,
    "RefreshMatViewStmt": _refresh,
    "VacuumStmt": _vacuum,
    "ClusterStmt": _on_relation(AE),
    "ReindexStmt": _reindex,
    "AlterSeqStmt": _on_relation(SRE, "sequence"),
    "RenameStmt": _rename,
    "AlterObjectSchemaStmt": _on_relation(AE),
    "CopyStmt": _copy,
    "CreateStatsStmt": _statistics,
    "ViewStmt": _reads("query"),
    "CreateTableAsStmt": _reads("query"),
    **{kind: _query(kind) for kind in _DML},
}
