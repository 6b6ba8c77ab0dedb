"""The database objects a statement creates or removes, named as PostgreSQL identifies them.

Pure: read from the parse tree alone. A name is spelled as the statement names it,
schema-qualified when the statement qualifies it, each part quoted as ``quote_ident`` would
(``app."Mixed Case"``); :func:`identity` turns it into what ``pg_identify_object()`` says of the
object in a database, so a removal found there (what ``CASCADE`` reaches, from ``pg_depend``)
can be matched with the statement that created it.

Only what the SQL names is listed: an index without a name, or the names PostgreSQL makes up
(``events_pkey``, ``events_id_seq``, ``events_account_id_fkey``) are not; nor are the objects
inside ``CREATE SCHEMA ... CREATE TABLE ...``, or a named ``NOT NULL`` constraint (a
``pg_constraint`` row from PostgreSQL 18 on only). ``CREATE TABLE`` lists its columns too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from backout.migrations.parse_tree import (
    Node,
    parse,
    qualified,
    quote_ident,
    relation,
    split_qualified,
    strings,
    unwrap,
)
from backout.migrations.statements import Statement


class ObjectKind(StrEnum):
    """What an object is; the values are the ``type`` column of ``pg_identify_object()``."""

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
    DOMAIN = "type"
    """PostgreSQL calls a domain a ``type``, as it does an enum: ``DOMAIN`` is ``TYPE``."""
    SCHEMA = "schema"
    FOREIGN_TABLE = "foreign table"
    FOREIGN_TABLE_COLUMN = "foreign table column"
    """A column of a foreign table (``CREATE FOREIGN TABLE``, ``ALTER FOREIGN TABLE``)."""
    EXTENSION = "extension"
    RULE = "rule"
    POLICY = "policy"


@dataclass(frozen=True)
class ObjectName:
    """An object as a statement names it."""

    kind: ObjectKind
    name: str
    """The object's own name, schema-qualified if the SQL qualifies it, quoted as needed
    (a column, constraint, trigger, rule or policy: its name alone)."""
    table: str | None = None
    """For a column, constraint, trigger, rule or policy: the relation it is on, as written."""
    arguments: str | None = None
    """For a function or procedure: its argument types (``integer, text``), as PostgreSQL
    reads them; ``None`` when the SQL names the function without arguments."""


@dataclass(frozen=True)
class Removal:
    """An object a statement drops."""

    obj: ObjectName
    cascade: bool
    missing_ok: bool
    """``IF EXISTS``."""


_ON_TABLE = frozenset({ObjectKind.CONSTRAINT, ObjectKind.TRIGGER, ObjectKind.RULE})
_ON_TABLE |= {ObjectKind.POLICY}
_GLOBAL = frozenset({ObjectKind.SCHEMA, ObjectKind.EXTENSION})
_COLUMNS = frozenset({ObjectKind.COLUMN, ObjectKind.FOREIGN_TABLE_COLUMN})


def identity(obj: ObjectName, schema: str = "public") -> tuple[str, str]:
    """``(type, identity)`` as ``pg_identify_object()`` gives them for ``obj``.

    An unqualified name is taken to be in ``schema``. A function named without arguments
    gets an identity without parentheses (``public.f``): match it as a prefix of the real
    one (``public.f(integer)``). Argument types written ``t.c%TYPE`` stay so (PostgreSQL
    resolves them to a type this function cannot know).
    """
    name = qualified(split_qualified(obj.name))
    if obj.kind in _GLOBAL:
        return obj.kind.value, name
    if obj.kind in _ON_TABLE:
        return obj.kind.value, f"{name} on {_in_schema(obj.table or '?', schema)}"
    if obj.kind in _COLUMNS:
        return obj.kind.value, f"{_in_schema(obj.table or '?', schema)}.{name}"
    name = _in_schema(obj.name, schema)
    if obj.kind in (ObjectKind.FUNCTION, ObjectKind.PROCEDURE) and obj.arguments is not None:
        name += f"({_argument_identities(obj.arguments, schema)})"
    return obj.kind.value, name


def _in_schema(name: str, schema: str) -> str:
    parts = split_qualified(name)
    return qualified((schema, *parts) if len(parts) == 1 else parts)


# --- removals ----------------------------------------------------------------------------

_DROPPED_KINDS = {
    "OBJECT_TABLE": ObjectKind.TABLE,
    "OBJECT_INDEX": ObjectKind.INDEX,
    "OBJECT_VIEW": ObjectKind.VIEW,
    "OBJECT_MATVIEW": ObjectKind.MATERIALIZED_VIEW,
    "OBJECT_SEQUENCE": ObjectKind.SEQUENCE,
    "OBJECT_FOREIGN_TABLE": ObjectKind.FOREIGN_TABLE,
    "OBJECT_FUNCTION": ObjectKind.FUNCTION,
    "OBJECT_ROUTINE": ObjectKind.FUNCTION,
    "OBJECT_PROCEDURE": ObjectKind.PROCEDURE,
    "OBJECT_TYPE": ObjectKind.TYPE,
    "OBJECT_DOMAIN": ObjectKind.DOMAIN,
    "OBJECT_SCHEMA": ObjectKind.SCHEMA,
    "OBJECT_EXTENSION": ObjectKind.EXTENSION,
    "OBJECT_TRIGGER": ObjectKind.TRIGGER,
    "OBJECT_RULE": ObjectKind.RULE,
    "OBJECT_POLICY": ObjectKind.POLICY,
}
"""``DROP ROUTINE`` may drop a procedure: it is taken for a function."""


def removals(statement: Statement) -> tuple[Removal, ...]:
    """Every object ``statement`` itself drops (not what ``CASCADE`` reaches), in order."""
    kind, node = parse(statement.sql)
    if kind == "DropStmt":
        object_kind = _DROPPED_KINDS.get(str(node.get("removeType")))
        if object_kind is None:
            return ()
        cascade = node.get("behavior") == "DROP_CASCADE"
        return tuple(
            Removal(_dropped(object_kind, obj), cascade, bool(node.get("missing_ok")))
            for obj in node.get("objects", ())
        )
    if kind == "AlterTableStmt":
        return tuple(_dropped_from_table(node))
    return ()


def _dropped(kind: ObjectKind, obj: Node) -> ObjectName:
    """A ``DROP``'s object: a list of names, a type name, a function with arguments."""
    node_type, body = next(iter(obj.items()))
    if node_type == "ObjectWithArgs":
        arguments = None if body.get("args_unspecified") else _dropped_arguments(kind, body)
        return ObjectName(kind, qualified(strings(body["objname"])), arguments=arguments)
    if node_type == "TypeName":
        return ObjectName(kind, qualified(strings(body["names"])))
    if node_type == "String":
        return ObjectName(kind, quote_ident(str(body["sval"])))
    parts = strings(body.get("items", ()))
    if kind in _ON_TABLE:
        return ObjectName(kind, quote_ident(parts[-1]), table=qualified(parts[:-1]))
    return ObjectName(kind, qualified(parts))


def _dropped_arguments(kind: ObjectKind, body: Node) -> str:
    if "objfuncargs" in body:
        return _arguments(body["objfuncargs"])
    return ", ".join(_type_name(unwrap(arg)) for arg in body.get("objargs", ()))


def _dropped_from_table(node: Node) -> Iterator[Removal]:
    """``ALTER TABLE t DROP COLUMN c, DROP CONSTRAINT n``: each subcommand's object."""
    table = relation(node["relation"])
    kinds = {"AT_DropColumn": _column_kind(node), "AT_DropConstraint": ObjectKind.CONSTRAINT}
    for cmd in map(unwrap, node.get("cmds", ())):
        kind = kinds.get(str(cmd.get("subtype")))
        if kind is not None:
            yield Removal(
                ObjectName(kind, quote_ident(str(cmd["name"])), table=table),
                cascade=cmd.get("behavior") == "DROP_CASCADE",
                missing_ok=bool(cmd.get("missing_ok")),
            )


# --- creations ---------------------------------------------------------------------------


def creations(statement: Statement) -> tuple[ObjectName, ...]:
    """Every object ``statement`` creates, as far as its SQL names it, in order."""
    return created_in(*parse(statement.sql))


def created_in(kind: str, node: Node) -> tuple[ObjectName, ...]:
    """:func:`creations` of a statement already parsed (:func:`~.parse_tree.parse`)."""
    return tuple(_created(kind, node))


_RELATIONS_CREATED = {
    "ViewStmt": ("view", ObjectKind.VIEW),
    "CreateSeqStmt": ("sequence", ObjectKind.SEQUENCE),
    "CompositeTypeStmt": ("typevar", ObjectKind.TYPE),
}
_TYPES_CREATED = {
    "CreateEnumStmt": "typeName",
    "CreateRangeStmt": "typeName",
    "CreateDomainStmt": "domainname",
    "DefineStmt": "defnames",
}
_ON_TABLE_CREATED = {
    "CreateTrigStmt": (ObjectKind.TRIGGER, "trigname", "relation"),
    "RuleStmt": (ObjectKind.RULE, "rulename", "relation"),
    "CreatePolicyStmt": (ObjectKind.POLICY, "policy_name", "table"),
}


def _created(kind: str, node: Node) -> Iterator[ObjectName]:
    if kind in _RELATIONS_CREATED:
        key, object_kind = _RELATIONS_CREATED[kind]
        yield ObjectName(object_kind, relation(node[key]))
    elif kind in _TYPES_CREATED and (kind != "DefineStmt" or node.get("kind") == "OBJECT_TYPE"):
        object_kind = ObjectKind.DOMAIN if kind == "CreateDomainStmt" else ObjectKind.TYPE
        yield ObjectName(object_kind, qualified(strings(node[_TYPES_CREATED[kind]])))
    elif kind in _ON_TABLE_CREATED:
        object_kind, name, table = _ON_TABLE_CREATED[kind]
        yield ObjectName(object_kind, quote_ident(str(node[name])), relation(node[table]))
    elif kind == "CreateStmt":
        yield from _created_table(node, ObjectKind.TABLE)
    elif kind == "CreateForeignTableStmt":
        yield from _created_table(node["base"], ObjectKind.FOREIGN_TABLE)
    elif kind == "AlterTableStmt" and node.get("objtype") in _ALTERED_TABLES:
        yield from _added_to_table(node)
    else:
        yield from _created_other(kind, node)


_ALTERED_TABLES = frozenset({"OBJECT_TABLE", "OBJECT_FOREIGN_TABLE"})


def _column_kind(node: Node) -> ObjectKind:
    """``ALTER FOREIGN TABLE``'s columns are foreign table columns; ``ALTER TABLE``'s are not
    (even on a foreign table: the parse tree cannot tell)."""
    foreign = node.get("objtype") == "OBJECT_FOREIGN_TABLE"
    return ObjectKind.FOREIGN_TABLE_COLUMN if foreign else ObjectKind.COLUMN


def _created_other(kind: str, node: Node) -> Iterator[ObjectName]:
    if kind == "CreateTableAsStmt":
        matview = node.get("objtype") == "OBJECT_MATVIEW"
        yield ObjectName(
            ObjectKind.MATERIALIZED_VIEW if matview else ObjectKind.TABLE,
            relation(node["into"]["rel"]),
        )
    elif kind == "SelectStmt" and node.get("intoClause"):
        yield ObjectName(ObjectKind.TABLE, relation(node["intoClause"]["rel"]))
    elif kind == "IndexStmt" and node.get("idxname"):
        yield _index(str(node["idxname"]), relation(node["relation"]))
    elif kind == "CreateFunctionStmt":
        object_kind = ObjectKind.PROCEDURE if node.get("is_procedure") else ObjectKind.FUNCTION
        name = qualified(strings(node["funcname"]))
        arguments = _arguments(node.get("parameters", ()))
        yield ObjectName(object_kind, name, arguments=arguments)
    elif kind == "CreateSchemaStmt":
        name = node.get("schemaname") or node.get("authrole", {}).get("rolename")
        yield ObjectName(ObjectKind.SCHEMA, quote_ident(str(name)))
    elif kind == "CreateExtensionStmt":
        yield ObjectName(ObjectKind.EXTENSION, quote_ident(str(node["extname"])))


def _index(name: str, table: str) -> ObjectName:
    """An index is created in its table's schema."""
    schema = split_qualified(table)[:-1]
    return ObjectName(ObjectKind.INDEX, qualified((*schema, name)))


def _created_table(node: Node, kind: ObjectKind) -> Iterator[ObjectName]:
    table = relation(node["relation"])
    yield ObjectName(kind, table)
    foreign = kind is ObjectKind.FOREIGN_TABLE
    column_kind = ObjectKind.FOREIGN_TABLE_COLUMN if foreign else ObjectKind.COLUMN
    for element in node.get("tableElts", ()):
        element_type, body = next(iter(element.items()))
        if element_type == "ColumnDef":
            yield from _column(body, table, column_kind)
        elif element_type == "Constraint":
            yield from _constraint(body, table)


def _added_to_table(node: Node) -> Iterator[ObjectName]:
    table = relation(node["relation"])
    for cmd in map(unwrap, node.get("cmds", ())):
        definition = cmd.get("def") or {}
        if cmd.get("subtype") == "AT_AddColumn" and "ColumnDef" in definition:
            yield from _column(definition["ColumnDef"], table, _column_kind(node))
        elif cmd.get("subtype") == "AT_AddConstraint" and "Constraint" in definition:
            yield from _constraint(definition["Constraint"], table)


def _column(column: Node, table: str, kind: ObjectKind) -> Iterator[ObjectName]:
    yield ObjectName(kind, quote_ident(str(column["colname"])), table=table)
    for constraint in column.get("constraints", ()):
        yield from _constraint(unwrap(constraint), table)


_WITH_INDEX = frozenset({"CONSTR_PRIMARY", "CONSTR_UNIQUE", "CONSTR_EXCLUSION"})
_CONSTRAINTS = frozenset({"CONSTR_CHECK", "CONSTR_FOREIGN"}) | _WITH_INDEX


def _constraint(constraint: Node, table: str) -> Iterator[ObjectName]:
    """A named constraint, and the index of the same name a key or exclusion builds."""
    contype = constraint.get("contype")
    name = constraint.get("conname")
    if not name or contype not in _CONSTRAINTS:
        return
    yield ObjectName(ObjectKind.CONSTRAINT, quote_ident(str(name)), table=table)
    if contype in _WITH_INDEX:
        yield _index(str(name), table)


# --- argument types ----------------------------------------------------------------------

_SQL_NAMES = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "float4": "real",
    "float8": "double precision",
    "bool": "boolean",
    "varchar": "character varying",
    "bpchar": "character",
    "numeric": "numeric",
    "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone",
    "time": "time without time zone",
    "timetz": "time with time zone",
    "interval": "interval",
    "bit": "bit",
    "varbit": "bit varying",
}
"""Types PostgreSQL prints by their SQL name, never schema-qualified (``format_type``)."""

_BUILTIN = frozenset(
    """text name oid date json jsonb jsonpath uuid bytea xml money inet cidr macaddr macaddr8
    tsvector tsquery regclass regtype regproc regprocedure regoper regoperator regnamespace
    regrole regconfig regdictionary regcollation point line lseg box path polygon circle
    int4range int8range numrange daterange tsrange tstzrange int4multirange int8multirange
    nummultirange datemultirange tsmultirange tstzmultirange record void trigger event_trigger
    cstring internal anyelement anyarray anynonarray anyenum anyrange anymultirange
    anycompatible anycompatiblearray anycompatiblenonarray anycompatiblerange
    anycompatiblemultirange refcursor xid xid8 cid tid pg_lsn pg_snapshot txid_snapshot
    char unknown""".split()
)
"""Types in ``pg_catalog`` an unqualified argument type is taken to be; anything else
unqualified is taken to be in the schema :func:`identity` is given."""

_INPUT_MODES = frozenset({"FUNC_PARAM_DEFAULT", "FUNC_PARAM_IN", "FUNC_PARAM_INOUT"})
_INPUT_MODES |= {"FUNC_PARAM_VARIADIC"}


def _arguments(parameters: Iterable[Node]) -> str:
    """The types of the arguments that identify a function in ``pg_identify_object()``: its
    inputs (a procedure's ``OUT`` arguments are not printed, though ``DROP`` may name them)."""
    return ", ".join(
        _type_name(parameter["argType"])
        for parameter in map(unwrap, parameters)
        if parameter.get("mode", "FUNC_PARAM_DEFAULT") in _INPUT_MODES
    )


def _type_name(type_name: Node) -> str:
    """A type as PostgreSQL reads it: ``int`` -> ``integer``, ``varchar(20)`` ->
    ``character varying`` (a modifier does not identify a type), ``app.mood[]``."""
    names = strings(type_name["names"])
    if _sql_named(names):
        written = _SQL_NAMES[names[-1]]
    else:
        written = qualified(names) + ("%TYPE" if type_name.get("pct_type") else "")
    return written + ("[]" if type_name.get("arrayBounds") else "")


def _sql_named(names: tuple[str, ...]) -> bool:
    """``pg_catalog.int4`` (as the parser reads ``int``) or a bare ``int4``."""
    return names[-1] in _SQL_NAMES and (len(names) == 1 or names[:-1] == ("pg_catalog",))


def _argument_identities(arguments: str, schema: str) -> str:
    """``integer, text, mood`` -> ``integer,pg_catalog.text,public.mood``, as
    ``pg_identify_object()`` writes a function's argument types."""
    if not arguments.strip():
        return ""
    _, node = parse(f"DROP FUNCTION f({arguments})")
    (function,) = map(unwrap, node["objects"])
    return ",".join(_type_identity(unwrap(arg), schema) for arg in function["objargs"])


def _type_identity(type_name: Node, schema: str) -> str:
    names = strings(type_name["names"])
    array = "[]" if type_name.get("arrayBounds") else ""
    if type_name.get("pct_type"):
        return _type_name(type_name)
    if _sql_named(names):
        return _SQL_NAMES[names[-1]] + array
    if len(names) == 1:
        names = ("pg_catalog" if names[0] in _BUILTIN else schema, names[0])
    return qualified(names) + array
