"""What a table is, from the catalog: to compare a table backout made with the tool's own."""

from __future__ import annotations

from typing import Any

import psycopg


def shape(conn: psycopg.Connection[Any], table: str) -> list[tuple[Any, ...]]:
    """Columns (name, type, not null, default) and constraints other than NOT NULL (which
    PostgreSQL 18 lists in pg_constraint too), in order."""
    columns = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull,"
        " pg_get_expr(adbin, adrelid) IS NOT NULL"
        " FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum"
        " WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (table,),
    ).fetchall()
    constraints = conn.execute(
        "SELECT contype, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = to_regclass(%s) AND contype <> 'n' ORDER BY 1, 2",
        (table,),
    ).fetchall()
    return [*columns, *constraints]


def has_column(conn: psycopg.Connection[Any], table: str, column: str) -> bool:
    found = conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
        (table, column),
    ).fetchone()
    return found is not None
