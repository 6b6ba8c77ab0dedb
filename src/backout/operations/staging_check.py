"""``backout check``: the strategy's staging validation checklist for one migration, as a report.

What the migration creates is learnt by rehearsing it on a scratch database (the fingerprint
before and after it), so nothing depends on how its SQL names things. Then, on the target
database: applied; each index it creates exists and is valid; each constraint exists and is
validated and, where the table has rows, a probe that violates it (inside a transaction that
is always rolled back, under statement and lock timeouts) is rejected; each trigger exists and
is enabled; the key queries of the configuration run under ``EXPLAIN (ANALYZE, BUFFERS)``
within their budget (rolled back too); the rollback passed rehearsal; and the changes that break
API consumers (tables or columns removed, column types changed) are listed for a person.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from backout.config import KeyQuery, Settings
from backout.database.connection import Target, connect
from backout.database.fingerprint import Change
from backout.database.histories.binding import applied_in
from backout.migrations.catalog import Catalog, resolved_entry
from backout.migrations.file import MigrationFile
from backout.operations.rehearsal import rehearse
from backout.operations.status import State, read_states

TICKED = "ok"
FAILED = "failed"
PERSON = "needs a person"

PROBE_STATEMENT_TIMEOUT = "5s"
PROBE_LOCK_TIMEOUT = "2s"
_VIOLATIONS = {"c": "23514", "f": "23503", "u": "23505", "p": "23505", "n": "23502", "x": "23P01"}


@dataclass(frozen=True)
class Item:
    """One line of the checklist."""

    what: str
    status: str
    evidence: str = ""


@dataclass
class Checklist:
    migration: str
    environment: str
    items: list[Item] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(i.status == FAILED for i in self.items)


def staging_check(settings: Settings, target: Target, reference: str, cwd: Any = None) -> Checklist:
    """The checklist of ``reference`` on ``target``."""
    catalog, entry = resolved_entry(settings, reference, cwd)
    migration = entry.read()
    checklist = Checklist(migration.name, target.name)
    verdicts = rehearse(settings, [migration.name])
    verdict = next((v for v in verdicts if v.migration == migration.name), None)
    created = verdict.created if verdict else ()
    with connect(target.url, autocommit=True) as conn:
        checklist.items.append(_applied(conn, settings, catalog, migration))
        checklist.items.append(_undamaged(conn, settings, catalog))
        for change in created:
            if change.change == "removed":
                continue
            if change.kind == "index":
                checklist.items.append(_index(conn, change))
            elif change.kind == "constraint":
                checklist.items.append(_constraint(conn, change))
            elif change.kind == "trigger":
                checklist.items.append(_trigger(conn, change))
            elif change.kind == "column" and _becomes_not_null(change):
                checklist.items.append(_not_null(conn, change))
        checklist.items += [_key_query(conn, q) for q in settings.key_queries]
    if verdict is None:
        checklist.items.append(Item("rollback rehearsed", FAILED, "the rehearsal did not run"))
    elif verdict.outcome in ("ok", "irreversible"):
        checklist.items.append(
            Item("rollback rehearsed on a scratch database", TICKED, verdict.outcome)
        )
    else:
        checklist.items.append(
            Item("rollback rehearsed on a scratch database", FAILED, "; ".join(verdict.problems()))
        )
    checklist.items += list(_breaking(created))
    return checklist


def _applied(
    conn: psycopg.Connection[Any], settings: Settings, catalog: Catalog, m: MigrationFile
) -> Item:
    applied = applied_in(conn, settings, catalog, m.folder).get(m.version or "")
    if applied is None:
        return Item(f"{m.name} is applied", FAILED, "no history row: apply it first")
    at = applied.applied_at
    when = f"{at:%Y-%m-%d %H:%M} UTC" if at is not None else "at a time its history does not say"
    return Item(f"{m.name} is applied", TICKED, f"{when} by {applied.applied_by or '?'}")


def _undamaged(conn: psycopg.Connection[Any], settings: Settings, catalog: Catalog) -> Item:
    """No applied migration lost objects it created (a rollback with --accept-damage, or a
    drop by hand)."""
    damaged = [
        s for s in read_states(settings, catalog, conn, damage=True) if s.state is State.DAMAGED
    ]
    if not damaged:
        return Item("no applied migration is damaged", TICKED)
    evidence = "; ".join(f"{s.name} lost {', '.join(s.lost)}" for s in damaged)
    return Item("no applied migration is damaged", FAILED, evidence)


def _index(conn: psycopg.Connection[Any], change: Change) -> Item:
    schema, name = change.name.split(".", 1)
    row = conn.execute(
        "SELECT i.indisvalid, i.indisready FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, name),
    ).fetchone()
    what = f"index {name} exists and is valid"
    if row is None:
        return Item(what, FAILED, "it does not exist")
    if not row[0] or not row[1]:
        return Item(
            what,
            FAILED,
            "it is INVALID (a failed CREATE INDEX CONCURRENTLY?): drop it and create it again",
        )
    return Item(what, TICKED)


def _trigger(conn: psycopg.Connection[Any], change: Change) -> Item:
    schema, table, name = change.name.split(".", 2)
    row = conn.execute(
        "SELECT t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND t.tgname = %s",
        (schema, table, name),
    ).fetchone()
    what = f"trigger {name} on {table} exists and is enabled"
    if row is None:
        return Item(what, FAILED, "it does not exist")
    if row[0] == "D":
        return Item(what, FAILED, "it is disabled")
    return Item(what, TICKED)


def _becomes_not_null(change: Change) -> bool:
    return " not null" in (change.after or "") and " not null" not in (change.before or "")


def _not_null(conn: psycopg.Connection[Any], change: Change) -> Item:
    schema, table, column = change.name.split(".", 2)
    what = f"column {table}.{column} is NOT NULL and rejects a NULL"
    row = conn.execute(
        "SELECT a.attnotnull, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s AND NOT a.attisdropped",
        (schema, table, column),
    ).fetchone()
    if row is None:
        return Item(what, FAILED, "the column does not exist")
    if not row[0]:
        return Item(what, FAILED, "the column accepts NULL")
    relation = sql.Identifier(schema, table)
    has_rows = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(relation)).fetchone()
    if not has_rows or not has_rows[0]:
        return Item(what, TICKED, "the table is empty, so no probe was run")
    return _probe(conn, what, relation, column, "n", [column], [str(row[1])])


def _constraint(conn: psycopg.Connection[Any], change: Change) -> Item:
    schema, table, name = change.name.split(".", 2)
    row = conn.execute(
        "SELECT con.contype, con.convalidated, c.oid,"
        " (SELECT array_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a"
        "   WHERE a.attrelid = c.oid AND a.attnum = ANY(con.conkey)),"
        " (SELECT array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)"
        "   FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum = ANY(con.conkey))"
        " FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND con.conname = %s",
        (schema, table, name),
    ).fetchone()
    what = f"constraint {name} on {table} exists, is validated and rejects a violation"
    if row is None:
        return Item(what, FAILED, "it does not exist")
    contype, validated, _, columns, types = row
    if not validated:
        return Item(what, FAILED, "it is NOT VALID: run ALTER TABLE ... VALIDATE CONSTRAINT")
    relation = sql.Identifier(schema, table)
    has_rows = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(relation)).fetchone()
    if not has_rows or not has_rows[0]:
        return Item(what, TICKED, "validated; the table is empty, so no probe was run")
    return _probe(conn, what, relation, name, str(contype), list(columns or ()), list(types or ()))


def _probe(
    conn: psycopg.Connection[Any],
    what: str,
    relation: sql.Composable,
    name: str,
    contype: str,
    columns: list[str],
    types: list[str],
) -> Item:
    """Try changes that should violate the constraint, in a transaction always rolled back."""
    expected = _VIOLATIONS.get(contype)
    attempts = list(_attempts(relation, contype, columns, types))
    if expected is None or not attempts:
        return Item(what, PERSON, "validated; no automatic probe for this kind of constraint")
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(
                "SELECT set_config('statement_timeout', %s, true),"
                " set_config('lock_timeout', %s, true)",
                (PROBE_STATEMENT_TIMEOUT, PROBE_LOCK_TIMEOUT),
            )
            for label, statement in attempts:
                try:
                    with conn.transaction():
                        conn.execute(statement)
                except psycopg.Error as exc:
                    names = (exc.diag.constraint_name, exc.diag.column_name)
                    if exc.sqlstate == expected and name in names:
                        return Item(what, TICKED, f"a probe ({label}) was rejected")
                    if exc.sqlstate in ("55P03", "57014"):
                        return Item(
                            what,
                            PERSON,
                            f"the probe could not run: {exc.sqlstate} (the table is busy)",
                        )
    except psycopg.Error as exc:
        return Item(what, PERSON, f"the probe could not run: {str(exc).splitlines()[0]}")
    tried = ", ".join(label for label, _ in attempts)
    return Item(what, PERSON, f"validated, but no probe violated it (tried {tried})")


def _attempts(
    relation: sql.Composable, contype: str, columns: list[str], types: list[str]
) -> Iterator[tuple[str, sql.Composed]]:
    one_row = sql.SQL("ctid = (SELECT ctid FROM {} LIMIT 1)").format(relation)
    if contype in ("u", "p"):
        yield (
            "a copy of an existing row",
            sql.SQL("INSERT INTO {} OVERRIDING SYSTEM VALUE SELECT * FROM {} LIMIT 1").format(
                relation, relation
            ),
        )
        return
    for column, type_name in zip(columns, types, strict=False):
        for label, value in _values(type_name, contype):
            yield (
                f"{column} = {label}",
                sql.SQL("UPDATE {} SET {} = {} WHERE {}").format(
                    relation, sql.Identifier(column), value, one_row
                ),
            )


def _values(type_name: str, contype: str) -> Iterator[tuple[str, sql.Composable]]:
    """Values likely to break a constraint on a column of this type."""
    yield "NULL", sql.SQL("NULL")
    if contype == "n":
        return
    bounds = {
        "smallint": ("-32768", "32767"),
        "integer": ("-2147483648", "2147483647"),
        "bigint": ("-9223372036854775808", "9223372036854775807"),
    }
    if type_name in bounds:
        low, high = bounds[type_name]
        yield low, sql.Literal(int(low))
        yield high, sql.Literal(int(high))
    elif type_name.startswith(("numeric", "real", "double")):
        yield "-1e15", sql.SQL("-1e15")
        yield "1e15", sql.SQL("1e15")
    elif type_name.startswith(("text", "character")):
        yield "''", sql.Literal("")
        yield "'backout probe'", sql.Literal("backout probe")
    elif type_name.startswith(("timestamp", "date")):
        yield "'-infinity'", sql.SQL("'-infinity'")
        yield "'infinity'", sql.SQL("'infinity'")
    elif type_name == "boolean":
        yield "true", sql.SQL("true")
        yield "false", sql.SQL("false")


def _key_query(conn: psycopg.Connection[Any], query: KeyQuery) -> Item:
    what = f"key query {query.name!r} within {query.budget_ms:g} ms"
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(
                "SELECT set_config('statement_timeout', %s, true)",
                (f"{max(query.budget_ms * 10, 1000):.0f}ms",),
            )
            rows = conn.execute(
                sql.SQL("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}").format(sql.SQL(query.sql))
            ).fetchall()
    except psycopg.Error as exc:
        return Item(what, FAILED, f"it failed: {str(exc).splitlines()[0]}")
    plan = rows[0][0]
    document = plan if isinstance(plan, list) else json.loads(plan)
    took = float(document[0].get("Execution Time", 0.0))
    node = document[0].get("Plan", {})
    evidence = f"{took:.1f} ms, top node {node.get('Node Type', '?')}"
    return Item(what, TICKED if took <= query.budget_ms else FAILED, evidence)


def _breaking(created: Sequence[Change]) -> Iterator[Item]:
    for change in created:
        if change.kind in ("table", "column", "view") and change.change == "removed":
            yield Item(
                f"breaking change: {change.kind} {change.name} is removed (or renamed)",
                PERSON,
                "tell the API's consumers",
            )
        elif change.kind == "column" and change.change == "changed":
            before, after = _column_type(change.before), _column_type(change.after)
            if before != after:
                yield Item(
                    f"breaking change: column {change.name} changes type",
                    PERSON,
                    f"{before} -> {after}",
                )


def _column_type(description: str | None) -> str:
    """The type in a fingerprint's column entry: what comes before its other attributes."""
    text = description or ""
    for marker in (" not null", " default ", " identity ", " generated"):
        text = text.split(marker, 1)[0]
    return text


def markdown(checklist: Checklist) -> str:
    """The report for a pull request."""
    marks = {TICKED: "[x]", FAILED: "[ ] **FAILED**", PERSON: "[ ] needs a person:"}
    out = [f"### backout check: {checklist.migration} on {checklist.environment}", ""]
    for item in checklist.items:
        line = f"- {marks[item.status]} {item.what}"
        out.append(line + (f" ({item.evidence})" if item.evidence else ""))
    failed = sum(1 for i in checklist.items if i.status == FAILED)
    person = sum(1 for i in checklist.items if i.status == PERSON)
    out += ["", f"{len(checklist.items)} checks: {failed} failed, {person} need a person."]
    return "\n".join(out) + "\n"
