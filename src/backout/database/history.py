"""The history tables (``schema_migrations``), the audit trail and the statement journal.

``schema_migrations`` has the strategy's columns plus three nullable ones
(``rollback_checksum``: the rollback section's SHA-256 when the migration was applied;
``execution_ms``; ``schema_before``). Its text columns have no length limit (the strategy's
``version VARCHAR(10)`` cannot hold a timestamp version); a table an earlier backout made is
upgraded in place the first time a change takes the migration lock (:func:`ensure_history`).
Each migrations folder has its own history table, so two folders that both start at 001 never
collide (:meth:`backout.config.Settings.history_table`).

The audit table (``backout_audit_event`` by default) is append-only: a trigger refuses
``UPDATE``, ``DELETE`` and ``TRUNCATE``. The journal records which statements of a
non-transactional step have finished, so a re-run resumes after them.

Every identifier is composed with :class:`psycopg.sql.Identifier`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from backout.redaction import redact, redact_values

JOURNAL_TABLE = "backout_journal"
NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)
"""Where a history row with no time sorts: before every row that has one."""


@dataclass(frozen=True)
class Applied:
    """One row of a history table."""

    version: str
    name: str
    applied_at: datetime | None
    """None when the tool that keeps the history records no time (dbmate, golang-migrate)."""
    applied_by: str | None
    checksum: str | None
    rollback_checksum: str | None = None
    execution_ms: int | None = None
    schema_before: str | None = None
    """SHA-256 of the schema fingerprint just before the migration ran (see ``verify``)."""


@dataclass(frozen=True)
class AuditEvent:
    """One row of the audit trail: what was done, where, by whom, with what SQL and outcome."""

    action: str
    """``apply``, ``rollback``, ``baseline``, ``emergency``, ``approval``, ..."""
    outcome: str
    """``success`` or ``failure``."""
    environment: str | None = None
    migration: str | None = None
    history_table: str | None = None
    operator: str | None = None
    approver: str | None = None
    reason: str | None = None
    sql_sha256: str | None = None
    sqlstate: str | None = None
    error: str | None = None
    duration_ms: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RolledBack:
    """The last successful rollback of a migration that is not applied now."""

    at: datetime
    action: str
    operator: str | None
    reason: str | None
    incident: str | None = None


UNBOUNDED = ("version", "name", "applied_by")
"""History columns the strategy's DDL bounded (``VARCHAR(10)``, ``VARCHAR(255)``) that hold
any length now: any version lint accepts (14-digit timestamps and longer), name and operator."""


def ensure_history(conn: psycopg.Connection[Any], table: str) -> None:
    """Create a history table when it does not exist (the strategy's columns, unbounded where
    they held text, and three extra columns); upgrade a table an earlier backout made.

    Called under the migration lock, before anything is recorded in the table.
    """
    if table_exists(conn, table):
        upgrade_history(conn, table)
        return
    conn.execute(
        sql.SQL(
            """
            CREATE TABLE IF NOT EXISTS {} (
              version TEXT PRIMARY KEY,
              name TEXT NOT NULL,
              applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
              applied_by TEXT,
              checksum VARCHAR(64),
              rollback_checksum VARCHAR(64),
              execution_ms INTEGER,
              schema_before VARCHAR(64)
            )
            """
        ).format(_ident(table))
    )


def upgrade_history(conn: psycopg.Connection[Any], table: str) -> None:
    """Bring an existing history table to today's columns, in place, keeping its rows.

    Adds ``schema_before`` and widens the bounded text columns to ``TEXT`` (``VARCHAR`` to
    ``TEXT`` rewrites neither the table nor its primary key). Reads the catalog only when there
    is nothing to change: no DDL, and no lock on the table, on every run.
    """
    changes: list[sql.Composable] = []
    if not column_exists(conn, table, "schema_before"):
        changes.append(sql.SQL("ADD COLUMN IF NOT EXISTS schema_before VARCHAR(64)"))
    for column in bounded_columns(conn, table):
        changes.append(sql.SQL("ALTER COLUMN {} TYPE TEXT").format(sql.Identifier(column)))
    if changes:
        conn.execute(sql.SQL("ALTER TABLE {} ").format(_ident(table)) + sql.SQL(", ").join(changes))


def bounded_columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    """The columns of :data:`UNBOUNDED` that still have a length limit in ``table``."""
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = ANY(%s)"
        " AND NOT attisdropped AND atttypid <> 'text'::regtype ORDER BY attnum",
        (table, list(UNBOUNDED)),
    ).fetchall()
    return [row[0] for row in rows]


def ensure_audit(conn: psycopg.Connection[Any], table: str) -> None:
    """Create the append-only audit table and its guard trigger when they do not exist."""
    if table_exists(conn, table):
        return
    guard = f"{table}_append_only"
    conn.execute(
        sql.SQL(
            """
            CREATE TABLE IF NOT EXISTS {table} (
              id BIGSERIAL PRIMARY KEY,
              occurred_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
              action TEXT NOT NULL,
              environment TEXT,
              migration TEXT,
              history_table TEXT,
              operator TEXT,
              approver TEXT,
              reason TEXT,
              sql_sha256 VARCHAR(64),
              outcome TEXT NOT NULL,
              sqlstate VARCHAR(5),
              error TEXT,
              duration_ms INTEGER,
              details JSONB NOT NULL DEFAULT '{{}}'
            )
            """
        ).format(table=_ident(table))
    )
    conn.execute(
        sql.SQL(
            """
            CREATE OR REPLACE FUNCTION {guard}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
            END;
            $$
            """
        ).format(guard=sql.Identifier(guard))
    )
    conn.execute(
        sql.SQL(
            """
            CREATE OR REPLACE TRIGGER {guard} BEFORE UPDATE OR DELETE OR TRUNCATE ON {table}
              FOR EACH STATEMENT EXECUTE FUNCTION {guard}()
            """
        ).format(guard=sql.Identifier(guard), table=_ident(table))
    )


def ensure_journal(conn: psycopg.Connection[Any]) -> None:
    if table_exists(conn, JOURNAL_TABLE):
        return
    conn.execute(
        sql.SQL(
            """
            CREATE TABLE IF NOT EXISTS {} (
              history_table TEXT NOT NULL,
              version TEXT NOT NULL,
              direction TEXT NOT NULL,
              sql_sha256 VARCHAR(64) NOT NULL,
              statement_index INTEGER NOT NULL,
              finished_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
              duration_ms INTEGER,
              PRIMARY KEY (history_table, version, direction, sql_sha256, statement_index)
            )
            """
        ).format(sql.Identifier(JOURNAL_TABLE))
    )


def table_exists(conn: psycopg.Connection[Any], table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def column_exists(conn: psycopg.Connection[Any], table: str, column: str) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s)"
        " AND attname = %s AND NOT attisdropped)",
        (table, column),
    ).fetchone()
    return bool(row and row[0])


def read_history(conn: psycopg.Connection[Any], table: str) -> dict[str, Applied]:
    """The rows of a history table by version; empty when the table does not exist."""
    if not table_exists(conn, table):
        return {}
    schema_before = sql.SQL(
        "schema_before" if column_exists(conn, table, "schema_before") else "NULL"
    )
    rows = conn.execute(
        sql.SQL(
            "SELECT version, name, applied_at, applied_by, checksum, rollback_checksum, "
            "execution_ms, {} FROM {} ORDER BY version"
        ).format(schema_before, _ident(table))
    ).fetchall()
    return {row[0]: Applied(*row) for row in rows}


def record_applied(conn: psycopg.Connection[Any], table: str, applied: Applied) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (version, name, applied_at, applied_by, checksum, rollback_checksum, "
            "execution_ms, schema_before) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        ).format(_ident(table)),
        (
            applied.version,
            applied.name,
            applied.applied_at,
            applied.applied_by,
            applied.checksum,
            applied.rollback_checksum,
            applied.execution_ms,
            applied.schema_before,
        ),
    )


def remove_applied(conn: psycopg.Connection[Any], table: str, version: str) -> None:
    conn.execute(sql.SQL("DELETE FROM {} WHERE version = %s").format(_ident(table)), (version,))


def write_audit(conn: psycopg.Connection[Any], table: str, event: AuditEvent) -> int:
    """Append ``event``; return its id."""
    row = conn.execute(
        sql.SQL(
            "INSERT INTO {} (action, environment, migration, history_table, operator, approver, "
            "reason, sql_sha256, outcome, sqlstate, error, duration_ms, details) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
        ).format(_ident(table)),
        (
            event.action,
            event.environment,
            event.migration,
            event.history_table,
            event.operator,
            event.approver,
            redact(event.reason) if event.reason else event.reason,
            event.sql_sha256,
            event.outcome,
            event.sqlstate,
            redact(event.error) if event.error else event.error,
            event.duration_ms,
            json.dumps(redact_values(dict(event.details)), default=str),
        ),
    ).fetchone()
    return int(row[0]) if row else 0


def last_rollbacks(
    conn: psycopg.Connection[Any], audit_table: str, history_table: str
) -> dict[str, RolledBack]:
    """Per migration name: its last successful rollback when no successful apply came after."""
    if not table_exists(conn, audit_table):
        return {}
    rows = conn.execute(
        sql.SQL(
            """
            SELECT DISTINCT ON (migration) migration, occurred_at, action, operator, reason,
                   details->>'incident'
              FROM {}
             WHERE history_table = %s AND outcome = 'success'
               AND action IN ('apply', 'baseline', 'rollback', 'emergency')
             ORDER BY migration, id DESC
            """
        ).format(_ident(audit_table)),
        (history_table,),
    ).fetchall()
    return {
        row[0]: RolledBack(row[1], row[2], row[3], row[4], row[5])
        for row in rows
        if row[2] in ("rollback", "emergency")
    }


def accepted_damage(conn: psycopg.Connection[Any], audit_table: str) -> dict[str, set[str]]:
    """Per migration name: the objects rollbacks of other migrations were allowed to remove
    from it (``--accept-damage``), as ``"<type> <identity>"``."""
    if not table_exists(conn, audit_table):
        return {}
    rows = conn.execute(
        sql.SQL(
            "SELECT details->'accepted_damage' FROM {} WHERE outcome = 'success'"
            " AND details ? 'accepted_damage' ORDER BY id"
        ).format(_ident(audit_table))
    ).fetchall()
    found: dict[str, set[str]] = {}
    for (damage,) in rows:
        for name, objects in (damage or {}).items():
            found.setdefault(name, set()).update(objects)
    return found


def journal_done(
    conn: psycopg.Connection[Any], key: tuple[str, str, str, str]
) -> dict[int, int | None]:
    """Finished statement indexes (and their durations) of a non-transactional step."""
    if not table_exists(conn, JOURNAL_TABLE):
        return {}
    rows = conn.execute(
        sql.SQL(
            "SELECT statement_index, duration_ms FROM {} WHERE history_table = %s "
            "AND version = %s AND direction = %s AND sql_sha256 = %s"
        ).format(sql.Identifier(JOURNAL_TABLE)),
        key,
    ).fetchall()
    return {row[0]: row[1] for row in rows}


def journal_record(
    conn: psycopg.Connection[Any], key: tuple[str, str, str, str], index: int, duration_ms: int
) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (history_table, version, direction, sql_sha256, statement_index, "
            "duration_ms) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
        ).format(sql.Identifier(JOURNAL_TABLE)),
        (*key, index, duration_ms),
    )


def journal_clear(conn: psycopg.Connection[Any], key: tuple[str, str, str, str]) -> None:
    if table_exists(conn, JOURNAL_TABLE):
        conn.execute(
            sql.SQL(
                "DELETE FROM {} WHERE history_table = %s AND version = %s AND direction = %s "
                "AND sql_sha256 = %s"
            ).format(sql.Identifier(JOURNAL_TABLE)),
            key,
        )


def table_ident(table: str) -> sql.Identifier:
    """``table`` or ``schema.table`` as a safely quoted identifier."""
    return sql.Identifier(*table.split(".", 1))


_ident = table_ident


def incident_rollback(
    conn: psycopg.Connection[Any], audit_table: str, incident: str
) -> tuple[int, dict[str, Any]] | None:
    """The id and details of the successful ``emergency`` rollback of ``incident``, if any."""
    if not table_exists(conn, audit_table):
        return None
    row = conn.execute(
        sql.SQL(
            "SELECT id, details FROM {} WHERE action = 'emergency' AND outcome = 'success'"
            " AND details->>'incident' = %s ORDER BY id DESC LIMIT 1"
        ).format(_ident(audit_table)),
        (incident,),
    ).fetchone()
    return (int(row[0]), dict(row[1] or {})) if row else None


def fleet_rollback(
    conn: psycopg.Connection[Any], audit_table: str, migration: str, fleet: str
) -> tuple[int, datetime] | None:
    """The id and time of the last successful change of ``migration`` when it is a rollback
    of fleet ``fleet`` (its audit details name the fleet): a re-run of that fleet's rollback
    finds the targets it already did."""
    if not table_exists(conn, audit_table):
        return None
    row = conn.execute(
        sql.SQL(
            "SELECT id, occurred_at, action, details->>'fleet' FROM {}"
            " WHERE migration = %s AND outcome = 'success'"
            " AND action IN ('apply', 'baseline', 'rollback', 'emergency')"
            " ORDER BY id DESC LIMIT 1"
        ).format(_ident(audit_table)),
        (migration,),
    ).fetchone()
    if row is None or row[2] != "rollback" or row[3] != fleet:
        return None
    return int(row[0]), row[1]
