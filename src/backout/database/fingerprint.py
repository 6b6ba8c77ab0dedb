"""A schema fingerprint: what the catalog says a database holds, normalised, and how two differ.

Read with SQL from the catalog (never pg_dump, whose version must match the server's): schemas,
tables, columns (type, default, nullability, identity, generation), constraints (definition and
validity), indexes (definition and validity), triggers (definition and whether enabled),
functions by signature with a hash of their body, views and materialized views, sequences,
types (enum values in order, domains, composites) and extensions. Each object becomes one entry,
``"<kind> <name>"`` → a canonical description, so two equal schemas compare equal and a diff
names each object added, removed or changed. backout's own tables (history, audit, journal) are
left out: they are not the application's schema. NOT NULL is part of a column's entry; the
catalog rows PostgreSQL 18 adds for it are left out, so fingerprints compare across versions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

_SYSTEM = "('pg_catalog', 'information_schema', 'pg_toast')"
_USER_SCHEMAS = (
    f"n.nspname NOT IN {_SYSTEM} AND n.nspname NOT LIKE 'pg_temp%%'"
    " AND n.nspname NOT LIKE 'pg_toast_temp%%'"
)
# Objects an extension created belong to the extension, which is listed by name.
# Relations and what hangs on them are read for every relation, or only for those in scope.
_SCOPE = "(%(everything)s OR {rel} = ANY(%(tables)s))"
_NOT_EXTENSION = (
    "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass"
    " AND d.objid = {oid} AND d.deptype = 'e')"
)

QUERIES: Mapping[str, str] = {
    "schema": f"""
        SELECT n.nspname, '' FROM pg_namespace n
        WHERE {_USER_SCHEMAS} AND {_NOT_EXTENSION.format(oid="n.oid", catalog="pg_namespace")}""",
    "table": f"""
        SELECT n.nspname || '.' || c.relname,
               c.relkind::text || CASE WHEN c.relpersistence = 'u' THEN ' unlogged' ELSE '' END
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'f') AND {_USER_SCHEMAS} AND {_SCOPE.format(rel="c.relname")}
          AND {_NOT_EXTENSION.format(oid="c.oid", catalog="pg_class")}""",
    "column": f"""
        SELECT n.nspname || '.' || c.relname || '.' || a.attname,
               format_type(a.atttypid, a.atttypmod)
               || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
               || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
               || CASE a.attidentity WHEN 'a' THEN ' identity always'
                                     WHEN 'd' THEN ' identity by default' ELSE '' END
               || CASE WHEN a.attgenerated <> '' THEN ' generated' ELSE '' END
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
        WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm') AND a.attnum > 0 AND NOT a.attisdropped
          AND {_SCOPE.format(rel="c.relname")}
          AND {_USER_SCHEMAS} AND {_NOT_EXTENSION.format(oid="c.oid", catalog="pg_class")}""",
    "constraint": f"""
        SELECT n.nspname || '.' || c.relname || '.' || con.conname,
               pg_get_constraintdef(con.oid)
               || CASE WHEN con.convalidated THEN '' ELSE ' not valid' END
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_SCHEMAS} AND {_SCOPE.format(rel="c.relname")} AND con.contype <> 'n'
          AND {_NOT_EXTENSION.format(oid="c.oid", catalog="pg_class")}""",
    "index": f"""
        SELECT n.nspname || '.' || ic.relname,
               pg_get_indexdef(i.indexrelid)
               || CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_class tc ON tc.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = ic.relnamespace
        WHERE {_USER_SCHEMAS} AND {_SCOPE.format(rel="tc.relname")}
          AND {_NOT_EXTENSION.format(oid="i.indrelid", catalog="pg_class")}""",
    "trigger": f"""
        SELECT n.nspname || '.' || c.relname || '.' || t.tgname,
               pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
        FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND {_USER_SCHEMAS} AND {_SCOPE.format(rel="c.relname")}""",
    "function": f"""
        SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid)
               || ')',
               p.prokind::text || ' ' || coalesce(pg_get_function_result(p.oid), '') || ' '
               || l.lanname || ' ' || md5(coalesce(p.prosrc, '')) || ' ' || p.provolatile::text
        FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_language l ON l.oid = p.prolang
        WHERE {_USER_SCHEMAS} AND {_NOT_EXTENSION.format(oid="p.oid", catalog="pg_proc")}""",
    "view": f"""
        SELECT n.nspname || '.' || c.relname,
               c.relkind::text || ' ' || md5(pg_get_viewdef(c.oid))
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND {_USER_SCHEMAS} AND {_SCOPE.format(rel="c.relname")}
          AND {_NOT_EXTENSION.format(oid="c.oid", catalog="pg_class")}""",
    "sequence": f"""
        SELECT n.nspname || '.' || c.relname,
               format_type(s.seqtypid, NULL) || ' increment ' || s.seqincrement
               || ' min ' || s.seqmin || ' max ' || s.seqmax || ' cycle ' || s.seqcycle
        FROM pg_sequence s
        JOIN pg_class c ON c.oid = s.seqrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_SCHEMAS} AND {_NOT_EXTENSION.format(oid="c.oid", catalog="pg_class")}""",
    "type": f"""
        SELECT n.nspname || '.' || t.typname,
               CASE t.typtype
                 WHEN 'e' THEN 'enum (' || (
                   SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                   FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
                 WHEN 'd' THEN 'domain ' || format_type(t.typbasetype, t.typtypmod)
                   || CASE WHEN t.typnotnull THEN ' not null' ELSE '' END
                 WHEN 'c' THEN 'composite'
                 ELSE 'type ' || t.typtype::text END
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype IN ('e', 'd', 'c', 'r', 'b') AND {_USER_SCHEMAS}
          AND (t.typtype <> 'c' OR EXISTS (
                SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c'))
          AND NOT (t.typtype = 'b' AND t.typcategory = 'A')
          AND {_NOT_EXTENSION.format(oid="t.oid", catalog="pg_type")}""",
    "extension": """
        SELECT e.extname, '' FROM pg_extension e WHERE e.extname <> 'plpgsql'""",
}

NEIGHBOURS = """
SELECT DISTINCT c.relname FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid JOIN pg_class r ON r.oid = con.confrelid
WHERE con.contype = 'f' AND r.relname = ANY(%s)
"""
"""The tables whose foreign keys reference the named ones: a ``CASCADE`` reaches them."""

_ALL = "\nUNION ALL\n".join(
    f"SELECT '{kind}' AS kind, q.* FROM ({query}) AS q" for kind, query in QUERIES.items()
)
"""Every query in one round trip."""


@dataclass(frozen=True)
class Change:
    """One object that differs between two fingerprints."""

    kind: str
    name: str
    change: str
    """``added``, ``removed`` or ``changed``."""
    before: str | None
    after: str | None

    def describe(self) -> str:
        if self.change == "changed":
            return f"{self.kind} {self.name} changed: {self.before} -> {self.after}"
        return f"{self.kind} {self.name} {self.change}"


@dataclass(frozen=True)
class Fingerprint:
    objects: Mapping[str, str]
    """``"<kind> <name>"`` -> canonical description."""

    @property
    def sha256(self) -> str:
        text = json.dumps(sorted(self.objects.items()), separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def diff(self, after: Fingerprint) -> list[Change]:
        """What changed from this fingerprint to ``after``, by kind and name."""
        changes = []
        for key in sorted(set(self.objects) | set(after.objects)):
            kind, name = key.split(" ", 1)
            before_value, after_value = self.objects.get(key), after.objects.get(key)
            if before_value == after_value:
                continue
            change = (
                "added" if before_value is None else "removed" if after_value is None else "changed"
            )
            changes.append(Change(kind, name, change, before_value, after_value))
        return changes


def fingerprint(
    conn: psycopg.Connection[Any],
    *,
    ignore_tables: Collection[str] = (),
    scope: Collection[str] | None = None,
) -> Fingerprint:
    """The fingerprint of the database ``conn`` is connected to; read-only.

    ``ignore_tables`` (unqualified names) are left out with their columns, constraints,
    indexes and triggers: backout's own history, audit and journal tables. With ``scope``
    (unqualified relation names), only those relations are read with their columns,
    constraints, indexes, triggers and views; schemas, functions, sequences, types and
    extensions are always read whole. Two fingerprints compare only when taken with the same
    ``scope``.
    """
    objects: dict[str, str] = {}
    ignored = set(ignore_tables)
    params = {"everything": scope is None, "tables": sorted(scope or ())}
    for kind, name, description in conn.execute(_ALL, params, prepare=True).fetchall():
        if not _belongs_to_ignored(kind, str(name), ignored):
            objects[f"{kind} {name}"] = str(description)
    return Fingerprint(objects)


def scope_of(conn: psycopg.Connection[Any], tables: Collection[str]) -> set[str]:
    """``tables`` and the tables whose foreign keys reference them."""
    named = sorted({t.rsplit(".", 1)[-1] for t in tables})
    return set(named) | {str(n) for (n,) in conn.execute(NEIGHBOURS, (named,)).fetchall()}


def _belongs_to_ignored(kind: str, name: str, ignored: set[str]) -> bool:
    if not ignored:
        return False
    parts = name.split(".")
    if kind in ("table", "view") and len(parts) >= 2:
        return parts[1] in ignored
    if kind in ("column", "constraint", "trigger") and len(parts) >= 3:
        return parts[1] in ignored
    if kind in ("index", "sequence") and len(parts) >= 2:
        return any(parts[1].startswith(table) for table in ignored)
    if kind == "function" and len(parts) >= 2:
        return any(parts[1].startswith(table) for table in ignored)
    if kind == "type" and len(parts) >= 2:
        return parts[1] in ignored
    return False
