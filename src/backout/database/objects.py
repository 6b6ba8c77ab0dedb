"""The objects a database holds, named as PostgreSQL names them, who created them, and what
removing some of them takes along.

An object is an :class:`ObjectKey`: the ``type`` and ``identity`` columns of PostgreSQL's own
``pg_identify_object()`` (``table public.events``, ``table constraint orders_event_fk on
public.orders``), stable across sessions, unlike OIDs. :func:`snapshot` lists the application's
objects (tables, columns, indexes, constraints, triggers, views, sequences, functions, types,
schemas, extensions, rules and policies; never backout's own tables, nor what PostgreSQL makes
on its own: row and array types, view rules, defaults, TOAST).

``apply`` records, in the same transaction, the objects each migration created (the difference
between the snapshots before and after it) in :data:`OBJECTS_TABLE`; a rollback forgets them.
:func:`reach` follows ``pg_depend`` from the objects a statement drops to everything that goes
with them, saying for each whether only ``CASCADE`` takes it along. Every query is read-only
on the catalog and takes no lock on the application's tables.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from backout.database.history import table_exists
from backout.database.lock import Session
from backout.migrations.objects import ObjectKind, ObjectName
from backout.migrations.parse_tree import split_qualified

OBJECTS_TABLE = "backout_objects"
"""Which migration created (or removed) which object: ``(history_table, version, type,
identity, removed)``."""


@dataclass(frozen=True, order=True)
class ObjectKey:
    """An object as ``pg_identify_object()`` names it."""

    type: str
    identity: str

    def describe(self) -> str:
        return f"{self.type} {self.identity}"

    def owns(self, other: ObjectKey) -> bool:
        """Whether ``other`` is part of this relation (a column of a removed table goes with it)."""
        columns = (ObjectKind.COLUMN, ObjectKind.FOREIGN_TABLE_COLUMN)
        return other.type in columns and other.identity.startswith(f"{self.identity}.")


@dataclass(frozen=True)
class Address:
    """An object as ``pg_depend`` points at it."""

    classid: int
    objid: int
    objsubid: int


@dataclass(frozen=True)
class Reached:
    """An object a drop takes along, and whether only ``CASCADE`` takes it (a normal
    dependency: without ``CASCADE`` the drop fails on it)."""

    key: ObjectKey
    needs_cascade: bool


_USER = (
    "{n}.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
    " AND {n}.nspname NOT LIKE 'pg\\_%%'"
)
_NOT_EXTENSION = (
    "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = {catalog}::regclass"
    " AND e.objid = {oid} AND e.deptype = 'e')"
)
_RELATIONS = f"""
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE {_USER.format(n="n")} AND c.oid <> ALL (%(ignored)s::regclass[])
       AND {_NOT_EXTENSION.format(catalog="'pg_class'", oid="c.oid")}
       AND NOT EXISTS (SELECT 1 FROM pg_index i
                        WHERE i.indexrelid = c.oid AND i.indrelid = ANY (%(ignored)s::regclass[]))
"""
_OBJECTS = f"""
WITH rel AS ({_RELATIONS}),
addresses(classid, objid, objsubid) AS (
    SELECT 'pg_class'::regclass, c.oid, 0 FROM pg_class c JOIN rel ON rel.oid = c.oid
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'i', 'I')
  UNION ALL
    SELECT 'pg_class'::regclass, a.attrelid, a.attnum::int FROM pg_attribute a
      JOIN rel ON rel.oid = a.attrelid JOIN pg_class c ON c.oid = a.attrelid
     WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f')
  UNION ALL
    SELECT 'pg_constraint'::regclass, k.oid, 0 FROM pg_constraint k JOIN rel ON rel.oid = k.conrelid
     WHERE k.contype <> 'n'
  UNION ALL
    SELECT 'pg_trigger'::regclass, t.oid, 0 FROM pg_trigger t JOIN rel ON rel.oid = t.tgrelid
     WHERE NOT t.tgisinternal
  UNION ALL
    SELECT 'pg_rewrite'::regclass, r.oid, 0 FROM pg_rewrite r JOIN rel ON rel.oid = r.ev_class
     WHERE r.rulename <> '_RETURN'
  UNION ALL
    SELECT 'pg_policy'::regclass, p.oid, 0 FROM pg_policy p JOIN rel ON rel.oid = p.polrelid
  UNION ALL
    SELECT 'pg_proc'::regclass, p.oid, 0
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE {_USER.format(n="n")} AND {_NOT_EXTENSION.format(catalog="'pg_proc'", oid="p.oid")}
       AND p.proname <> ALL (%(guards)s::text[])
  UNION ALL
    SELECT 'pg_type'::regclass, t.oid, 0
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE {_USER.format(n="n")} AND {_NOT_EXTENSION.format(catalog="'pg_type'", oid="t.oid")}
       AND t.typtype IN ('e', 'd', 'c', 'r', 'm') AND t.typcategory <> 'A'
       AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
  UNION ALL
    SELECT 'pg_namespace'::regclass, n.oid, 0 FROM pg_namespace n
     WHERE {_USER.format(n="n")} AND n.nspname <> 'public'
       AND {_NOT_EXTENSION.format(catalog="'pg_namespace'", oid="n.oid")}
  UNION ALL
    SELECT 'pg_extension'::regclass, x.oid, 0 FROM pg_extension x WHERE x.extname <> 'plpgsql'
)
SELECT o.type, o.identity
  FROM addresses a, LATERAL pg_identify_object(a.classid, a.objid, a.objsubid) o
"""


def snapshot(conn: psycopg.Connection[Any], ignore_tables: Collection[str]) -> frozenset[ObjectKey]:
    """The application's objects in the database ``conn`` is connected to; ``ignore_tables``
    (backout's own: history, audit, journal) are left out with what hangs on them."""
    existing = [t for t in sorted(ignore_tables) if table_exists(conn, t)]
    params = {"ignored": existing, "guards": [f"{t}_append_only" for t in ignore_tables]}
    rows = conn.execute(_OBJECTS, params, prepare=True).fetchall()
    return frozenset(ObjectKey(str(kind), str(identity)) for kind, identity in rows)


def ensure_objects(conn: psycopg.Connection[Any]) -> None:
    """Create :data:`OBJECTS_TABLE` when it does not exist."""
    if table_exists(conn, OBJECTS_TABLE):
        return
    conn.execute(
        sql.SQL(
            """
            CREATE TABLE IF NOT EXISTS {} (
              history_table TEXT NOT NULL,
              version TEXT NOT NULL,
              type TEXT NOT NULL,
              identity TEXT NOT NULL,
              removed BOOLEAN NOT NULL DEFAULT false,
              PRIMARY KEY (history_table, version, type, identity)
            )
            """
        ).format(sql.Identifier(OBJECTS_TABLE))
    )


def record_changes(
    conn: psycopg.Connection[Any],
    history_table: str,
    version: str,
    before: frozenset[ObjectKey],
    after: frozenset[ObjectKey],
) -> None:
    """Record what migration ``version`` of ``history_table`` created and removed (the
    difference between the snapshots around it), replacing an earlier application's record."""
    forget(conn, history_table, version)
    rows = [(history_table, version, k.type, k.identity, False) for k in sorted(after - before)]
    rows += [(history_table, version, k.type, k.identity, True) for k in sorted(before - after)]
    if not rows:
        return
    with conn.cursor() as cur:
        cur.executemany(
            sql.SQL(
                "INSERT INTO {} (history_table, version, type, identity, removed)"
                " VALUES (%s, %s, %s, %s, %s)"
            ).format(sql.Identifier(OBJECTS_TABLE)),
            rows,
        )


def forget(conn: psycopg.Connection[Any], history_table: str, version: str) -> None:
    """Forget what migration ``version`` created: it is rolled back."""
    if not table_exists(conn, OBJECTS_TABLE):
        return
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE history_table = %s AND version = %s").format(
            sql.Identifier(OBJECTS_TABLE)
        ),
        (history_table, version),
    )


@dataclass(frozen=True)
class Changes:
    """What one applied migration created and removed, as recorded when it was applied."""

    created: frozenset[ObjectKey] = frozenset()
    removed: frozenset[ObjectKey] = frozenset()


def recorded(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], Changes]:
    """What each migration changed, by ``(history_table, version)``; empty without the table."""
    if not table_exists(conn, OBJECTS_TABLE):
        return {}
    rows = conn.execute(
        sql.SQL("SELECT history_table, version, type, identity, removed FROM {}").format(
            sql.Identifier(OBJECTS_TABLE)
        )
    ).fetchall()
    created: dict[tuple[str, str], set[ObjectKey]] = {}
    removed: dict[tuple[str, str], set[ObjectKey]] = {}
    for table, version, kind, identity, gone in rows:
        (removed if gone else created).setdefault((table, version), set())
        (removed if gone else created)[(table, version)].add(ObjectKey(kind, identity))
    return {
        where: Changes(frozenset(created.get(where, ())), frozenset(removed.get(where, ())))
        for where in created.keys() | removed.keys()
    }


_ON_RELATION = {
    ObjectKind.COLUMN: ("pg_class", "SELECT attrelid, attnum::int FROM pg_attribute"
                        " WHERE attrelid = to_regclass(%s) AND attname = %s AND NOT attisdropped"),
    ObjectKind.CONSTRAINT: ("pg_constraint", "SELECT oid, 0 FROM pg_constraint"
                            " WHERE conrelid = to_regclass(%s) AND conname = %s"),
    ObjectKind.TRIGGER: ("pg_trigger", "SELECT oid, 0 FROM pg_trigger"
                         " WHERE tgrelid = to_regclass(%s) AND tgname = %s"),
    ObjectKind.RULE: ("pg_rewrite", "SELECT oid, 0 FROM pg_rewrite"
                      " WHERE ev_class = to_regclass(%s) AND rulename = %s"),
    ObjectKind.POLICY: ("pg_policy", "SELECT oid, 0 FROM pg_policy"
                        " WHERE polrelid = to_regclass(%s) AND polname = %s"),
}  # fmt: skip
_ON_RELATION[ObjectKind.FOREIGN_TABLE_COLUMN] = _ON_RELATION[ObjectKind.COLUMN]
"""Objects that live on a relation: found by the relation and their own (unquoted) name."""

_BY_NAME = {
    ObjectKind.FUNCTION: ("pg_proc", "SELECT to_regproc(%s)::oid, 0"),
    ObjectKind.PROCEDURE: ("pg_proc", "SELECT to_regproc(%s)::oid, 0"),
    ObjectKind.TYPE: ("pg_type", "SELECT to_regtype(%s)::oid, 0"),
    ObjectKind.SCHEMA: ("pg_namespace", "SELECT to_regnamespace(%s)::oid, 0"),
    ObjectKind.EXTENSION: ("pg_extension", "SELECT oid, 0 FROM pg_extension WHERE extname = %s"),
}
"""Objects found by their name alone (any other kind is a relation: ``to_regclass``)."""


def resolve(conn: psycopg.Connection[Any], obj: ObjectName) -> Address | None:
    """Where ``obj`` is in the catalog (the search path applies to an unqualified name); None
    when it does not exist. Reads the catalog only: no lock is taken, so a table locked by
    another session never makes this wait."""
    catalog, query, params = _lookup(obj)
    row = conn.execute(query, params).fetchone()
    if row is None or row[0] is None:
        return None
    return Address(_class_oid(conn, catalog), int(row[0]), int(row[1]))


def _lookup(obj: ObjectName) -> tuple[str, str, tuple[str, ...]]:
    """The catalog, query and parameters that find ``obj``."""
    if obj.kind in _ON_RELATION and obj.table is not None:
        catalog, query = _ON_RELATION[obj.kind]
        return catalog, query, (obj.table, split_qualified(obj.name)[-1])
    if obj.kind in (ObjectKind.FUNCTION, ObjectKind.PROCEDURE) and obj.arguments is not None:
        return "pg_proc", "SELECT to_regprocedure(%s)::oid, 0", (f"{obj.name}({obj.arguments})",)
    if obj.kind is ObjectKind.EXTENSION:
        catalog, query = _BY_NAME[obj.kind]
        return catalog, query, (split_qualified(obj.name)[-1],)
    if obj.kind in _BY_NAME:
        catalog, query = _BY_NAME[obj.kind]
        return catalog, query, (obj.name,)
    return "pg_class", "SELECT to_regclass(%s)::oid, 0", (obj.name,)


def _class_oid(conn: psycopg.Connection[Any], catalog: str) -> int:
    row = conn.execute("SELECT %s::regclass::oid::int", (catalog,)).fetchone()
    assert row is not None
    return int(row[0])


_REACH = """
WITH RECURSIVE edges(fc, fo, fs, tc, tobj, ts, normal) AS (
    SELECT refclassid, refobjid, refobjsubid, classid, objid, objsubid, deptype = 'n'
      FROM pg_depend WHERE deptype IN ('n', 'a', 'i', 'P', 'S', 'e')
  UNION ALL  -- an object internal to another (a view's rule) goes with its owner (the view)
    SELECT classid, objid, objsubid, refclassid, refobjid, 0, false
      FROM pg_depend WHERE deptype = 'i'
),
reach(classid, objid, objsubid, normal) AS (
    SELECT c, o, s, false FROM unnest(%s::oid[], %s::oid[], %s::int[]) AS d(c, o, s)
  UNION
    SELECT e.tc, e.tobj, e.ts, r.normal OR e.normal
      FROM reach r JOIN edges e ON e.fc = r.classid AND e.fo = r.objid
                               AND (r.objsubid = 0 OR e.fs = r.objsubid)
)
SELECT o.type, o.identity, bool_and(r.normal)
  FROM reach r, LATERAL pg_identify_object(r.classid, r.objid, r.objsubid) o
 WHERE o.identity IS NOT NULL AND coalesce(o.schema, '') <> 'pg_toast'
   AND o.type NOT IN ('default value', 'toast table', 'toast table column')
   AND NOT (o.type = 'rule' AND o.name = '_RETURN')
   AND NOT (r.classid = 'pg_type'::regclass AND EXISTS (
         SELECT 1 FROM pg_type t WHERE t.oid = r.objid
            AND (t.typcategory = 'A' OR (t.typrelid <> 0 AND t.typtype = 'c'
                 AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) <> 'c'))))
   AND NOT (r.classid = 'pg_trigger'::regclass AND EXISTS (
         SELECT 1 FROM pg_trigger t WHERE t.oid = r.objid AND t.tgisinternal))
   AND NOT (r.classid = 'pg_constraint'::regclass AND EXISTS (
         SELECT 1 FROM pg_constraint k WHERE k.oid = r.objid AND k.contype = 'n'))
 GROUP BY o.type, o.identity
"""


def reach(conn: psycopg.Connection[Any], addresses: Collection[Address]) -> list[Reached]:
    """The objects at ``addresses`` and everything that goes when they are dropped (through
    ``pg_depend``), each once; an object is :attr:`Reached.needs_cascade` when every way to it
    passes a normal dependency."""
    if not addresses:
        return []
    listed = list(addresses)
    rows = conn.execute(
        _REACH,
        (
            [a.classid for a in listed],
            [a.objid for a in listed],
            [a.objsubid for a in listed],
        ),
        prepare=True,
    ).fetchall()
    return sorted(
        (Reached(ObjectKey(kind, identity), bool(normal)) for kind, identity, normal in rows),
        key=lambda r: r.key,
    )


def identify(conn: psycopg.Connection[Any], address: Address) -> ObjectKey | None:
    """The name PostgreSQL gives the object at ``address``."""
    row = conn.execute(
        "SELECT type, identity FROM pg_identify_object(%s, %s, %s)",
        (address.classid, address.objid, address.objsubid),
    ).fetchone()
    return ObjectKey(str(row[0]), str(row[1])) if row and row[1] else None


@dataclass(frozen=True)
class RelationSize:
    """A relation's size as the planner's statistics know it (no lock taken)."""

    relation: str
    rows: int | None
    """Estimated rows; None when the table was never vacuumed or analysed."""
    bytes: int


def relation_sizes(
    conn: psycopg.Connection[Any], relations: Collection[str]
) -> Mapping[str, RelationSize]:
    """The size of each of ``relations`` (names as written) that exists, from ``pg_class``."""
    rows = conn.execute(
        """
        SELECT t.name, CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END,
               (c.relpages::bigint + coalesce(
                    (SELECT sum(i.relpages) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                      WHERE x.indrelid = c.oid), 0)
               ) * current_setting('block_size')::bigint
          FROM unnest(%s::text[]) AS t(name)
          JOIN pg_class c ON c.oid = to_regclass(t.name)
        """,
        (list(relations),),
    ).fetchall()
    return {name: RelationSize(name, rows, int(size)) for name, rows, size in rows}


@dataclass(frozen=True)
class Holder:
    """A session holding (or queued for) a lock on a relation."""

    relation: str
    mode: str
    """As ``pg_locks.mode`` shows it (``AccessShareLock``)."""
    granted: bool
    session: Session


def lock_holders(conn: psycopg.Connection[Any], relations: Collection[str]) -> list[Holder]:
    """Other sessions' locks on ``relations`` (names as written), held or waited for."""
    rows = conn.execute(
        """
        SELECT t.name, l.mode, l.granted, a.pid, a.usename, a.application_name, a.state, a.query,
               a.xact_start, now() - coalesce(a.xact_start, a.query_start)
          FROM unnest(%s::text[]) AS t(name)
          JOIN pg_locks l ON l.relation = to_regclass(t.name) AND l.locktype = 'relation'
          JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.pid <> pg_backend_pid()
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
         ORDER BY a.xact_start NULLS LAST, a.pid
        """,
        (list(relations),),
    ).fetchall()
    return [Holder(row[0], row[1], row[2], Session(*row[3:])) for row in rows]
