"""Read what the catalog says about the objects some data losses name, as plain records.

:func:`read_catalog` runs read-only catalog queries for exactly what the losses name: the
relation each loss's target resolves to, the tables of a dropped schema, the tables a
``TRUNCATE ... CASCADE`` reaches through foreign keys, the views a ``DROP TABLE ... CASCADE``
takes along, and, for each relation to back up, its columns, primary key, sequences and
estimated rows. What to make of them is :func:`~backout.operations.backup.planning.plan`'s.
Given :class:`~backout.database.waits.Waits`, the queries run in one transaction whose lock waits
are bounded (``pg_relation_size`` and ``count(*)`` wait behind an ``ACCESS EXCLUSIVE`` lock), and
a lock timeout is retried, then reported naming the sessions in the way (exit 5).

Identifiers only ever reach SQL through :mod:`psycopg.sql`; names are resolved with parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from backout.database.waits import Waits, bounded
from backout.migrations.statements import DataLoss, LossKind
from backout.operations.backup.planning import (
    Catalog,
    DependentView,
    Relation,
    names_a_table,
    quoted,
)

SMALL_TABLE = 64 << 20
"""Bytes under which a table never analysed is counted to estimate its rows."""


def read_catalog(
    conn: psycopg.Connection[Any], losses: Iterable[DataLoss], waits: Waits | None = None
) -> Catalog:
    """The :class:`Catalog` records :func:`~.planning.plan` needs for ``losses``; with
    ``waits``, every lock wait bounded and retried."""
    listed = list(losses)
    if waits is None or not listed:
        return _read(conn, listed)

    def attempt() -> Catalog:
        with bounded(conn, waits.options):
            return _read(conn, listed)

    return waits.retrying(conn, "the backup", attempt)


def _read(conn: psycopg.Connection[Any], losses: Iterable[DataLoss]) -> Catalog:
    resolved: dict[str, int | None] = {}
    schemas: dict[str, tuple[int, ...]] = {}
    referencing: dict[int, tuple[int, ...]] = {}
    dependants: dict[int, tuple[DependentView, ...]] = {}
    for loss in losses:
        if loss.action == LossKind.DROP_SCHEMA:
            if loss.target not in schemas:
                schemas[loss.target] = _schema_tables(conn, loss.target)
            continue
        if not names_a_table(loss.action):
            continue
        if loss.target not in resolved:
            resolved[loss.target] = _resolve(conn, loss.target)
        oid = resolved[loss.target]
        if oid is None or not loss.cascade:
            continue
        if loss.action == LossKind.TRUNCATE and oid not in referencing:
            referencing[oid] = _referencing(conn, oid)
        if loss.action == LossKind.DROP_TABLE and oid not in dependants:
            dependants[oid] = _dependent_views(conn, oid)
    targets = {target: oid for target, oid in resolved.items() if oid is not None}
    oids = [*targets.values(), *(o for tables in schemas.values() for o in tables)]
    oids += [o for refs in referencing.values() for o in refs]
    oids += [v.oid for views in dependants.values() for v in views if v.kind == "m"]
    relations = {oid: _relation(conn, oid) for oid in dict.fromkeys(oids)}
    return Catalog(relations, targets, schemas, referencing, dependants)


def _resolve(conn: psycopg.Connection[Any], target: str) -> int | None:
    """The table's oid: ``schema.name`` as parsed (already unquoted), else the search path."""
    schema, _, name = target.rpartition(".")
    if schema:
        row = conn.execute(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s",
            (schema, name),
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relname = %s AND n.nspname = ANY (current_schemas(false))"
            " AND c.relkind IN ('r', 'p', 'm', 'f')"
            " ORDER BY array_position(current_schemas(false), n.nspname) LIMIT 1",
            (name,),
        ).fetchone()
    return int(row[0]) if row else None


def _schema_tables(conn: psycopg.Connection[Any], schema: str) -> tuple[int, ...]:
    rows = conn.execute(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition"
        " ORDER BY c.relname",
        (schema,),
    ).fetchall()
    return tuple(int(oid) for (oid,) in rows)


_REFERENCING = """
WITH RECURSIVE reached(oid) AS (
  SELECT %s::oid
  UNION
  SELECT con.conrelid FROM pg_constraint con JOIN reached r ON con.confrelid = r.oid
  WHERE con.contype = 'f'
)
SELECT oid FROM reached OFFSET 1
"""


def _referencing(conn: psycopg.Connection[Any], oid: int) -> tuple[int, ...]:
    return tuple(int(ref) for (ref,) in conn.execute(_REFERENCING, (oid,)).fetchall())


_DEPENDANT_VIEWS = """
SELECT DISTINCT v.oid, v.oid::regclass::text, v.relkind
FROM pg_depend d
JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
JOIN pg_class v ON v.oid = r.ev_class
WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = %s AND v.oid <> %s
"""


def _dependent_views(conn: psycopg.Connection[Any], oid: int) -> tuple[DependentView, ...]:
    rows = conn.execute(_DEPENDANT_VIEWS, (oid, oid)).fetchall()
    return tuple(DependentView(int(view), str(name), str(kind)) for view, name, kind in rows)


def _relation(conn: psycopg.Connection[Any], oid: int) -> Relation:
    row = conn.execute(
        "SELECT n.nspname, c.relname, c.relkind, c.reltuples::bigint,"
        " pg_relation_size(c.oid) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s",
        (oid,),
    ).fetchone()
    if row is None:  # dropped since it was resolved: there is nothing left to describe
        return Relation(oid, "", "")
    schema, name, kind, estimate, size = row
    if estimate < 0 and size <= SMALL_TABLE:  # never analysed: counting is cheap here
        relation = sql.Identifier(schema, name)
        counted = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(relation)).fetchone()
        estimate = counted[0] if counted else -1
    columns, sequences = _columns(conn, oid, f"{quoted(schema)}.{quoted(name)}")
    return Relation(
        oid=oid,
        schema=schema,
        name=name,
        kind=kind,
        columns=columns,
        key=_primary_key(conn, oid),
        sequences=sequences,
        estimated_rows=int(estimate),
    )


def _primary_key(conn: psycopg.Connection[Any], oid: int) -> tuple[str, ...]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i"
        " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.n",
        (oid,),
    ).fetchall()
    return tuple(str(name) for (name,) in rows)


def _columns(
    conn: psycopg.Connection[Any], oid: int, table: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(columns, sequences)``: the columns COPY can load back (not generated ones), in order,
    and those a sequence feeds."""
    rows = conn.execute(
        "SELECT a.attname, a.attgenerated = '',"
        " pg_get_serial_sequence(%s, a.attname) IS NOT NULL"
        " FROM pg_attribute a WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum",
        (table, oid),
    ).fetchall()
    columns = tuple(str(name) for name, loadable, _ in rows if loadable)
    sequences = tuple(str(name) for name, _, fed in rows if fed)
    return columns, sequences
