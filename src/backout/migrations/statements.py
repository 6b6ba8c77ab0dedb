"""SQL statements, as PostgreSQL's own parser (pglast) splits and understands them.

Pure functions: text in, statements with their line numbers and what they do out. Nothing here
guesses with regular expressions on ``;``: ``$$`` bodies, ``BEGIN ATOMIC``, strings and comments
holding ``;`` are the parser's business.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Flag(StrEnum):
    """Something about a statement an operator must know before running it."""

    NON_TRANSACTIONAL = "non-transactional"
    """PostgreSQL refuses to run it inside a transaction block."""
    DESTROYS_DATA = "destroys-data"
    """It drops, truncates, deletes or rewrites data."""
    TRANSACTION_CONTROL = "transaction-control"
    """BEGIN, COMMIT, ROLLBACK, SAVEPOINT, SET TRANSACTION...: backout manages transactions
    itself (:mod:`backout.migrations.transaction_control` says which are accepted)."""


class LossKind(StrEnum):
    """What a destructive statement does to data; the values are the SQL words that name it."""

    DROP_TABLE = "DROP TABLE"
    DROP_SCHEMA = "DROP SCHEMA"
    DROP_MATERIALIZED_VIEW = "DROP MATERIALIZED VIEW"
    DROP_FOREIGN_TABLE = "DROP FOREIGN TABLE"
    DROP_DATABASE = "DROP DATABASE"
    DROP_OTHER = "DROP"
    """Any other object dropped with ``CASCADE`` (``DROP TYPE mood CASCADE``): what the cascade
    takes along is unknown. :attr:`DataLoss.object_type` names the object's type."""
    DROP_COLUMN = "DROP COLUMN"
    TRUNCATE = "TRUNCATE"
    DELETE = "DELETE FROM"
    UPDATE = "UPDATE"
    MERGE = "MERGE INTO"
    UPSERT = "INSERT ... ON CONFLICT DO UPDATE"


@dataclass(frozen=True)
class DataLoss:
    """What a destructive statement destroys: ``action`` on ``table`` (and ``column``)."""

    action: LossKind
    """Its value is the SQL words (``DROP TABLE``): ``action == "UPDATE"`` holds for an update."""
    target: str
    """The object, schema-qualified when the statement qualifies it (``public.jobs``)."""
    column: str | None = None
    cascade: bool = False
    columns: tuple[str, ...] = ()
    """For ``UPDATE``: the columns it sets."""
    object_type: str = ""
    """For :attr:`LossKind.DROP_OTHER`: the dropped object's type as PostgreSQL's parser names
    it without ``OBJECT_`` (``TYPE``, ``VIEW``, ``ACCESS_METHOD``)."""

    @property
    def verb(self) -> str:
        """The action as the statement words it: ``DROP TABLE``, ``DROP TYPE``, ``UPDATE``."""
        return f"{self.action} {self.object_type}" if self.object_type else str(self.action)

    def describe(self) -> str:
        what = f"{self.target}.{self.column}" if self.column else self.target
        return f"{self.verb} {what}" + (" CASCADE" if self.cascade else "")


@dataclass(frozen=True)
class Statement:
    """One SQL statement exactly as written (without its terminating ``;``) and where it is."""

    sql: str
    line: int
    end_line: int
    """The line where the statement ends (its last token)."""
    flags: frozenset[Flag] = frozenset()
    data_loss: tuple[DataLoss, ...] = ()
    non_transactional_reason: str | None = None
    added_columns: tuple[tuple[str, str], ...] = ()
    """``(table, column)`` for each column an ``ALTER TABLE ... ADD COLUMN`` adds."""
    transaction_control: str | None = None
    """For transaction control, what it does in SQL words: ``BEGIN``, ``COMMIT``, ``COMMIT AND
    CHAIN``, ``SAVEPOINT``, ``SET TRANSACTION``... (``END`` is ``COMMIT``, ``ABORT`` is
    ``ROLLBACK``); ``BEGIN`` or ``START TRANSACTION`` with transaction modes say so."""
    node_kind: str | None = field(default=None, compare=False, repr=False)

    @property
    def kind(self) -> str:
        """The parse-tree node name, e.g. ``CreateStmt``, ``DropStmt`` (parsed on first use)."""
        if self.node_kind is None:
            from pglast.parser import parse_sql_json

            stmt = json.loads(parse_sql_json(self.sql))["stmts"][0]["stmt"]
            object.__setattr__(self, "node_kind", next(iter(stmt)))
        return str(self.node_kind)

    def has(self, flag: Flag) -> bool:
        return flag in self.flags


@dataclass(frozen=True)
class Problem:
    """Something in a migration's SQL that backout will not run or cannot read, and its line."""

    code: str
    """A stable identifier: ``sql-syntax``, ``psql-meta-command``, ``rollback-unparseable``, ..."""
    line: int
    message: str


def split(text: str, *, first_line: int = 1) -> tuple[Statement, ...]:
    """Split ``text`` into statements; raise :class:`SqlSyntaxError` when the parser rejects it.

    ``first_line`` is the line number of ``text``'s first line in its file.
    """
    from pglast.parser import ParseError
    from pglast.parser import split as split_slices

    try:
        pieces = split_slices(text, with_parser=True, only_slices=True)
    except ParseError as exc:
        message = exc.args[0]
        # The parser gives no offset for "syntax error at end of input": point at the end.
        offset = exc.args[1] if len(exc.args) > 1 and exc.args[1] is not None else len(text)
        raise SqlSyntaxError(
            Problem(
                "sql-syntax",
                first_line + text.rstrip().count("\n", 0, max(offset, 0)),
                f"PostgreSQL's parser rejects this: {message}",
            )
        ) from None
    statements = []
    line, counted = first_line, 0
    for piece in pieces:
        line += text.count("\n", counted, piece.start)
        counted = piece.start
        statements.append(describe(text[piece], line))
    return tuple(statements)


# Statements that start with one of these words and mention none of the _SUSPECT words can be
# neither destructive, nor non-transactional, nor transaction control: they skip the parse tree.
_HARMLESS = frozenset(
    "CREATE INSERT COMMENT GRANT REVOKE SELECT SET RESET DO CALL LOCK REFRESH NOTIFY COPY "
    "SECURITY IMPORT DISCARD VALUES TABLE".split()
)
_SUSPECT = re.compile(
    r"concurrently|database|tablespace|subscription|conflict|transaction", re.IGNORECASE
)
_FIRST_WORD = re.compile(r"[A-Za-z]+")


def describe(sql: str, line: int) -> Statement:
    """The :class:`Statement` for one statement's text, starting at ``line``."""
    end_line = line + sql.count("\n")
    word = _FIRST_WORD.match(sql)
    if word and word.group().upper() in _HARMLESS and not _SUSPECT.search(sql):
        return Statement(sql=sql, line=line, end_line=end_line)
    from pglast.parser import parse_sql_json

    stmt = json.loads(parse_sql_json(sql))["stmts"][0]["stmt"]
    kind, node = next(iter(stmt.items()))
    flags: set[Flag] = set()
    reason = _non_transactional(kind, node)
    if reason:
        flags.add(Flag.NON_TRANSACTIONAL)
    loss = _data_loss(kind, node)
    if loss:
        flags.add(Flag.DESTROYS_DATA)
    control = _transaction_control(kind, node)
    if control:
        flags.add(Flag.TRANSACTION_CONTROL)
    return Statement(
        sql=sql,
        line=line,
        end_line=end_line,
        flags=frozenset(flags),
        data_loss=loss,
        non_transactional_reason=reason,
        added_columns=_added_columns(kind, node),
        transaction_control=control,
        node_kind=kind,
    )


def referenced_tables(statements: Sequence[Statement]) -> set[str]:
    """Every table (relation) the statements name, as the parse tree shows them."""
    from pglast.parser import parse_sql_json

    found: set[str] = set()
    for statement in statements:
        _collect_relations(json.loads(parse_sql_json(statement.sql)), found)
    return found


def _collect_relations(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        if "relname" in node:
            found.add(_relation_name(node))
        for value in node.values():
            _collect_relations(value, found)
    elif isinstance(node, list):
        for value in node:
            _collect_relations(value, found)


def _added_columns(kind: str, node: Node) -> tuple[tuple[str, str], ...]:
    if kind != "AlterTableStmt":
        return ()
    table = _relation_name(node.get("relation"))
    return tuple(
        (table, str(cmd["def"]["ColumnDef"].get("colname")))
        for cmd in map(_unwrap, node.get("cmds", ()))
        if cmd.get("subtype") == "AT_AddColumn" and "ColumnDef" in cmd.get("def", {})
    )


def is_complete_sql(text: str) -> bool:
    """Whether PostgreSQL's parser accepts ``text`` as one or more complete statements.

    Cheaper than :func:`split`: the parser runs, but no parse tree crosses into Python.
    """
    from pglast.parser import ParseError
    from pglast.parser import split as split_slices

    try:
        return bool(split_slices(text, with_parser=True, only_slices=True))
    except ParseError:
        return False


class SqlSyntaxError(Exception):
    """Raised by :func:`split`; carries the parser's message as a :class:`Problem`."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


Node = dict[str, Any]


_NEVER_IN_TRANSACTION = {
    "CreatedbStmt": "CREATE DATABASE",
    "DropdbStmt": "DROP DATABASE",
    "AlterSystemStmt": "ALTER SYSTEM",
    "CreateTableSpaceStmt": "CREATE TABLESPACE",
    "DropTableSpaceStmt": "DROP TABLESPACE",
    "CreateSubscriptionStmt": "CREATE SUBSCRIPTION",
    "DropSubscriptionStmt": "DROP SUBSCRIPTION",
}


def _non_transactional(kind: str, node: Node) -> str | None:
    """Why PostgreSQL refuses a statement inside a transaction block, or ``None``."""
    if kind == "IndexStmt" and node.get("concurrent"):
        return "CREATE INDEX CONCURRENTLY"
    if kind == "DropStmt" and node.get("concurrent"):
        return "DROP INDEX CONCURRENTLY"
    if kind == "ReindexStmt":
        if any(_unwrap(p).get("defname") == "concurrently" for p in node.get("params", ())):
            return "REINDEX CONCURRENTLY"
        if node.get("kind") in ("REINDEX_OBJECT_SYSTEM", "REINDEX_OBJECT_DATABASE"):
            return "REINDEX SYSTEM/DATABASE"
    if kind == "VacuumStmt" and node.get("is_vacuumcmd"):
        return "VACUUM"
    if kind == "ClusterStmt" and not node.get("relation"):
        return "CLUSTER without a table"
    if kind == "AlterTableStmt":
        for cmd in map(_unwrap, node.get("cmds", ())):
            detach = cmd.get("def", {}).get("PartitionCmd", {})
            if cmd.get("subtype") == "AT_DetachPartition" and detach.get("concurrent"):
                return "DETACH PARTITION CONCURRENTLY"
    return _NEVER_IN_TRANSACTION.get(kind)


_TRANSACTION_WORDS = {
    "TRANS_STMT_BEGIN": "BEGIN",
    "TRANS_STMT_START": "START TRANSACTION",
    "TRANS_STMT_COMMIT": "COMMIT",
    "TRANS_STMT_ROLLBACK": "ROLLBACK",
    "TRANS_STMT_SAVEPOINT": "SAVEPOINT",
    "TRANS_STMT_RELEASE": "RELEASE SAVEPOINT",
    "TRANS_STMT_ROLLBACK_TO": "ROLLBACK TO SAVEPOINT",
    "TRANS_STMT_PREPARE": "PREPARE TRANSACTION",
    "TRANS_STMT_COMMIT_PREPARED": "COMMIT PREPARED",
    "TRANS_STMT_ROLLBACK_PREPARED": "ROLLBACK PREPARED",
}
# SET names that set the current transaction's (or the session's default) characteristics.
_SET_TRANSACTION = frozenset({"TRANSACTION", "TRANSACTION SNAPSHOT", "SESSION CHARACTERISTICS"})


def _transaction_control(kind: str, node: Node) -> str | None:
    """What a transaction-control statement does, in SQL words; ``None`` for any other."""
    if kind == "VariableSetStmt" and node.get("name") in _SET_TRANSACTION:
        return f"SET {node['name']}"
    if kind != "TransactionStmt":
        return None
    words = _TRANSACTION_WORDS.get(str(node.get("kind")), "transaction control")
    if node.get("chain"):
        words += " AND CHAIN"
    if node.get("options"):
        words += " with transaction modes"
    return words


_DROPS_DATA = {
    "OBJECT_TABLE": LossKind.DROP_TABLE,
    "OBJECT_SCHEMA": LossKind.DROP_SCHEMA,
    "OBJECT_MATVIEW": LossKind.DROP_MATERIALIZED_VIEW,
    "OBJECT_FOREIGN_TABLE": LossKind.DROP_FOREIGN_TABLE,
}


def _data_loss(kind: str, node: Node) -> tuple[DataLoss, ...]:
    """What a statement destroys: dropped tables and columns, truncated, deleted or updated rows."""
    # WITH gone AS (DELETE ... RETURNING ...) INSERT ...: the CTE is where the data goes.
    in_ctes = tuple(
        loss
        for cte in node.get("withClause", {}).get("ctes", ())
        for query in [_unwrap(cte).get("ctequery")]
        if query
        for loss in _data_loss(*next(iter(query.items())))
    )
    return in_ctes + _statement_data_loss(kind, node)


def _statement_data_loss(kind: str, node: Node) -> tuple[DataLoss, ...]:
    cascade = node.get("behavior") == "DROP_CASCADE"
    if kind == "DropStmt":
        return _dropped(node, cascade)
    if kind == "AlterTableStmt":
        return _dropped_columns(node)
    if kind == "TruncateStmt":
        return tuple(
            DataLoss(LossKind.TRUNCATE, _relation_name(_unwrap(rel)), cascade=cascade)
            for rel in node.get("relations", ())
        )
    if kind == "DeleteStmt":
        return (DataLoss(LossKind.DELETE, _relation_name(node.get("relation"))),)
    if kind == "UpdateStmt":
        columns = tuple(str(_unwrap(target).get("name")) for target in node.get("targetList", ()))
        return (DataLoss(LossKind.UPDATE, _relation_name(node.get("relation")), columns=columns),)
    if kind == "MergeStmt":
        return (DataLoss(LossKind.MERGE, _relation_name(node.get("relation"))),)
    if (
        kind == "InsertStmt"
        and node.get("onConflictClause", {}).get("action") == "ONCONFLICT_UPDATE"
    ):
        return (DataLoss(LossKind.UPSERT, _relation_name(node.get("relation"))),)
    if kind == "DropdbStmt":
        return (DataLoss(LossKind.DROP_DATABASE, str(node.get("dbname"))),)
    return ()


def _dropped(node: Node, cascade: bool) -> tuple[DataLoss, ...]:
    """``DROP``: objects that hold data, and any other object dropped with ``CASCADE``."""
    remove = str(node.get("removeType", "OBJECT"))
    action = _DROPS_DATA.get(remove)
    if action is None and not cascade:
        return ()
    other = "" if action else remove.removeprefix("OBJECT_")
    return tuple(
        DataLoss(
            action or LossKind.DROP_OTHER, _object_name(obj), cascade=cascade, object_type=other
        )
        for obj in node.get("objects", ())
    )


def _dropped_columns(node: Node) -> tuple[DataLoss, ...]:
    table = _relation_name(node.get("relation"))
    return tuple(
        DataLoss(
            LossKind.DROP_COLUMN,
            table,
            column=cmd.get("name"),
            cascade=cmd.get("behavior") == "DROP_CASCADE",
        )
        for cmd in map(_unwrap, node.get("cmds", ()))
        if cmd.get("subtype") == "AT_DropColumn"
    )


def _unwrap(node: Node) -> Node:
    """``{"RangeVar": {...}}`` -> ``{...}``: a list item's one key names its type."""
    return next(iter(node.values())) if len(node) == 1 else node


def _relation_name(rel: Node | None) -> str:
    if not rel:
        return "?"
    name = str(rel.get("relname"))
    return f"{rel['schemaname']}.{name}" if rel.get("schemaname") else name


def _object_name(obj: Node) -> str:
    kind, body = next(iter(obj.items()))
    if kind == "String":
        return str(body.get("sval"))
    if kind == "List":
        return ".".join(_object_name(part) for part in body.get("items", ()))
    if kind == "TypeName":
        return ".".join(_object_name(part) for part in body.get("names", ()))
    if kind == "ObjectWithArgs":
        return ".".join(_object_name(part) for part in body.get("objname", ()))
    return "?"


class LineKind(StrEnum):
    """What a line of SQL text is, at the top level (outside strings and ``$$`` bodies)."""

    BLANK = "blank"
    COMMENT = "comment"
    """A ``--`` comment that is the first thing on its line."""
    BLOCK_COMMENT = "block-comment"
    """A line of a ``/* ... */`` comment that starts its line."""
    META = "meta"
    """A psql meta-command such as ``\\i`` or ``\\set``: not SQL, psql's own."""
    CODE = "code"
    """Anything else: SQL, or the inside of a string, comment or body that spans lines."""


# Tokens that can span lines: strings of every kind, quoted identifiers, /* comments */.
_SPANNING = frozenset({"SCONST", "USCONST", "XCONST", "BCONST", "IDENT", "UIDENT", "C_COMMENT"})


def line_kinds(text: str) -> tuple[LineKind, ...]:
    """Classify each line of ``text`` (index 0 is line 1), using PostgreSQL's scanner.

    A line is first classified by how it starts; PostgreSQL's scanner then finds the tokens that
    span lines (a ``$$`` body, a string, a block comment), and the lines inside them are code
    (or block comment), whatever they start with. When the scanner cannot read the text (an
    unterminated string), the classification by how lines start stands.
    """
    lines = text.split("\n")
    kinds = _by_prefix(lines)
    from pglast.parser import ParseError, scan

    try:
        tokens = scan(text)
    except ParseError:
        return tuple(kinds)
    spanning = [t for t in tokens if t.name in _SPANNING]
    if not spanning:
        return tuple(kinds)
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    for token in spanning:
        first = bisect_right(starts, token.start) - 1
        last = bisect_right(starts, token.end) - 1
        inside = LineKind.BLOCK_COMMENT if token.name == "C_COMMENT" else LineKind.CODE
        if (
            inside is LineKind.BLOCK_COMMENT
            and not lines[first][: token.start - starts[first]].strip()
        ):
            kinds[first] = LineKind.BLOCK_COMMENT
        for number in range(first + 1, last + 1):
            kinds[number] = inside
    return tuple(kinds)


def line_kinds_from(lines: list[str], statements: Sequence[Statement]) -> tuple[LineKind, ...]:
    """:func:`line_kinds` for text PostgreSQL's parser has split into ``statements``.

    Cheaper than scanning again: the lines a statement spans are code, whatever they start with
    (a ``$$`` body line may start with ``--``). Only for text without ``/* */`` comments, which
    may start after code on a line; :func:`line_kinds` handles those.
    """
    kinds = _by_prefix(lines)
    for statement in statements:
        for number in range(statement.line, (statement.end_line or statement.line) + 1):
            kinds[number - 1] = LineKind.CODE
    return tuple(kinds)


def _by_prefix(lines: list[str]) -> list[LineKind]:
    """Kinds by how each line starts; ``/* ... */`` is followed across lines, nothing else."""
    kinds: list[LineKind] = []
    in_comment = False
    for line in lines:
        stripped = line.lstrip()
        if in_comment:
            kinds.append(LineKind.BLOCK_COMMENT)
            in_comment = "*/" not in stripped
        elif not stripped:
            kinds.append(LineKind.BLANK)
        elif stripped.startswith("--"):
            kinds.append(LineKind.COMMENT)
        elif stripped.startswith("/*"):
            kinds.append(LineKind.BLOCK_COMMENT)
            in_comment = "*/" not in stripped[2:]
        elif stripped.startswith("\\"):
            kinds.append(LineKind.META)
        else:
            kinds.append(LineKind.CODE)
    return kinds


META_COMMAND_MESSAGE = (
    "psql meta-command: backout runs SQL, not psql scripts; replace it with the SQL it stands for"
)


def meta_command_problems(kinds: Sequence[LineKind], first_line: int = 1) -> tuple[Problem, ...]:
    """A ``psql-meta-command`` problem for each meta-command line."""
    return tuple(
        Problem("psql-meta-command", first_line + n, META_COMMAND_MESSAGE)
        for n, kind in enumerate(kinds)
        if kind is LineKind.META
    )


def blank_meta_commands(text: str, kinds: Sequence[LineKind]) -> str:
    """``text`` with psql meta-command lines blanked, so offsets and line numbers stay right."""
    if LineKind.META not in kinds:
        return text
    return "\n".join(
        " " * len(line) if kind is LineKind.META else line
        for line, kind in zip(text.split("\n"), kinds, strict=True)
    )
