"""Flyway's history table, ``flyway_schema_history``, read and written as Flyway does.

The source of truth is Flyway's own code (flyway/flyway, Flyway 10):

- the table, ``PostgreSQLDatabase.getRawCreateScript``
  (flyway-database/flyway-database-postgresql): ten columns, the primary key
  ``<table>_pk`` on ``installed_rank`` and the index ``<table>_s_idx`` on ``success``;
- a row, ``SchemaHistory.addAppliedMigration`` and ``JdbcTableSchemaHistory.doAddAppliedMigration``
  (flyway-core): ``installed_rank`` one more than the last row's, ``installed_on`` left to its
  default ``now()``, the description and script abbreviated to their columns' sizes;
- the version as ``MigrationVersion.toString`` writes it (``1_2`` is ``1.2``), the description
  as ``ResourceNameParser`` reads it (the name after ``__``, ``_`` read as a space), the checksum
  as ``ChecksumCalculator`` computes it (CRC-32 of the file's lines, line breaks left out);
- the row types, ``MigrationType``/``CoreMigrationType``: ``SCHEMA`` (``<< Flyway Schema
  Creation >>``) and ``BASELINE`` are markers, not migrations; ``DELETE`` is a version
  ``flyway repair`` marked deleted; ``UNDO_SQL`` (and the other ``UNDO_`` types) a version
  undone by Flyway Teams' ``undo``.

An undo is a new row, never a deletion: Flyway Teams' ``undo`` appends an ``UNDO_SQL`` row of
the undone version (the undo file's description, script and checksum, ``success`` true), after
which ``flyway info`` shows the version ``Undone`` then ``Pending`` and ``flyway migrate``
applies it again (flywaydb.org, documentation/getstarted/undo.md: "Our audit trail now clearly
shows that version 2 was first applied, then undone and is now pending again"). backout's
rollback writes that row.

A version is applied when its latest successful row (by ``installed_rank``) is a migration
(``SQL``, ``JDBC``...) rather than an undo or a deletion. A failed row (``success`` false,
which Flyway writes on PostgreSQL only for a migration that ran outside a transaction) is a
trouble: ``flyway migrate`` refuses to go on until ``flyway repair`` removes it, and backout
never removes it. Repeatable migrations (no version) are not versioned migrations and are left
out, as the catalog leaves ``R__`` files out.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from backout.database.histories.base import Recorded, Trouble
from backout.database.history import Applied, table_ident
from backout.migrations.entry import Entry
from backout.migrations.versions import version_key

COLUMNS = (
    "installed_rank",
    "version",
    "description",
    "type",
    "script",
    "checksum",
    "installed_by",
    "installed_on",
    "execution_time",
    "success",
)
MARKERS = frozenset({"SCHEMA", "BASELINE"})
"""Rows that record what Flyway did to the schema, not a migration."""
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Row:
    """One row of ``flyway_schema_history``."""

    rank: int
    version: str | None
    description: str
    type: str
    script: str
    installed_by: str
    installed_on: datetime
    execution_time: int
    success: bool

    @property
    def undoes(self) -> bool:
        """An undo (``UNDO_SQL``...) or a deletion ``flyway repair`` recorded."""
        return self.type.startswith("UNDO_") or self.type == "DELETE"


class FlywayHistory:
    tool = "flyway"
    default_table = "flyway_schema_history"

    def recognises(self, columns: Mapping[str, str]) -> bool:
        return set(columns) >= set(COLUMNS)

    def create(self, conn: psycopg.Connection[Any], table: str) -> None:
        # PostgreSQLDatabase.getRawCreateScript, column for column.
        name = table.rsplit(".", 1)[-1]
        conn.execute(
            sql.SQL(
                "CREATE TABLE {table} ("
                " installed_rank INT NOT NULL,"
                " version VARCHAR(50),"
                " description VARCHAR(200) NOT NULL,"
                " type VARCHAR(20) NOT NULL,"
                " script VARCHAR(1000) NOT NULL,"
                " checksum INTEGER,"
                " installed_by VARCHAR(100) NOT NULL,"
                " installed_on TIMESTAMP NOT NULL DEFAULT now(),"
                " execution_time INTEGER NOT NULL,"
                " success BOOLEAN NOT NULL)"
            ).format(table=table_ident(table))
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY (installed_rank)").format(
                table_ident(table), sql.Identifier(f"{name}_pk")
            )
        )
        conn.execute(
            sql.SQL("CREATE INDEX {} ON {} (success)").format(
                sql.Identifier(f"{name}_s_idx"), table_ident(table)
            )
        )

    def read(self, conn: psycopg.Connection[Any], table: str, entries: Sequence[Entry]) -> Recorded:
        rows = read_rows(conn, table)
        return Recorded(applied_of(rows, entries), troubles_of(rows, entries))

    def record_applied(
        self,
        conn: psycopg.Connection[Any],
        table: str,
        entry: Entry,
        entries: Sequence[Entry],
        applied: Applied,
    ) -> None:
        """The row ``flyway migrate`` writes for a versioned SQL migration."""
        insert_row(
            conn,
            table,
            entry.version,
            "SQL",
            entry.path,
            entry.folder,
            installed_by=applied.applied_by,
            execution_time=applied.execution_ms or 0,
        )

    def record_rolled_back(
        self, conn: psycopg.Connection[Any], table: str, entry: Entry, entries: Sequence[Entry]
    ) -> None:
        """The row Flyway Teams' ``undo`` writes: ``UNDO_SQL``, the undone version, the undo
        file's description, script and checksum (the migration's name when it has none)."""
        undo = entry.others[0] if entry.others else entry.path.with_name("U" + entry.path.name[1:])
        insert_row(conn, table, entry.version, "UNDO_SQL", undo, entry.folder)


def read_rows(conn: psycopg.Connection[Any], table: str) -> list[Row]:
    """Every row, in ``installed_rank`` order; ``installed_on`` (a ``TIMESTAMP`` Flyway fills
    with ``now()``) read in the session's time zone."""
    found = conn.execute(
        sql.SQL(
            "SELECT installed_rank, version, description, type, script, installed_by,"
            " installed_on::timestamptz, execution_time, success FROM {} ORDER BY installed_rank"
        ).format(table_ident(table))
    ).fetchall()
    return [Row(*row) for row in found]


def applied_of(rows: Sequence[Row], entries: Sequence[Entry]) -> dict[str, Applied]:
    """The applied versions: each version's latest successful row, when it is a migration."""
    latest: dict[tuple[int, ...], Row] = {}
    for row in rows:
        if row.version is not None and row.success and row.type not in MARKERS:
            latest[flyway_key(row.version)] = row
    known = {flyway_key(e.version): e for e in entries if e.version is not None}
    applied = _below_baseline(rows, entries)
    for key, row in latest.items():
        if row.undoes:
            continue
        entry = known.get(key)
        version = entry.version if entry and entry.version else str(row.version)
        name = entry.name if entry else Path(row.script).name.removesuffix(".sql")
        applied[version] = Applied(
            version=version,
            name=name,
            applied_at=row.installed_on,
            applied_by=row.installed_by,
            checksum=None,
            execution_ms=row.execution_time,
        )
    return applied


def _below_baseline(rows: Sequence[Row], entries: Sequence[Entry]) -> dict[str, Applied]:
    """The migrations at or below the latest ``BASELINE`` row's version: Flyway shows them as
    "Below Baseline" and never applies them (the schema already has them), so they count as
    applied, at the baseline's time."""
    baselines = [r for r in rows if r.type == "BASELINE" and r.success and r.version is not None]
    if not baselines:
        return {}
    base = baselines[-1]
    assert base.version is not None
    top = flyway_key(base.version)
    return {
        e.version: Applied(e.version, e.name, base.installed_on, base.installed_by, None)
        for e in entries
        if e.version is not None and flyway_key(e.version) <= top
    }


def troubles_of(rows: Sequence[Row], entries: Sequence[Entry]) -> tuple[Trouble, ...]:
    """Each failed row, in plain words, with Flyway's way out."""
    known = {flyway_key(e.version): e for e in entries if e.version is not None}
    troubles = []
    for row in rows:
        if row.success:
            continue
        entry = known.get(flyway_key(row.version)) if row.version is not None else None
        what = f"version {row.version}" if row.version is not None else f"repeatable {row.script}"
        action = "the undo of " if row.undoes else ""
        troubles.append(
            Trouble(
                entry.name if entry else row.script,
                f"Flyway recorded {action}{what} as failed (installed_rank {row.rank}, "
                f"{row.installed_on:%Y-%m-%d %H:%M:%S}): it ran outside a transaction and "
                "stopped part-way, so some of its statements may be done",
                "check the schema and finish or undo by hand what the failed statements left, "
                "then `flyway repair` removes the failed row; backout never removes it",
            )
        )
    return tuple(troubles)


def insert_row(
    conn: psycopg.Connection[Any],
    table: str,
    version: str | None,
    kind: str,
    script: Path,
    location: Path,
    *,
    installed_by: str | None = None,
    execution_time: int = 0,
) -> None:
    """Append a row as ``JdbcTableSchemaHistory.doAddAppliedMigration`` does. The table is
    locked against other writers first, so two ranks are never computed alike."""
    conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(table_ident(table)))
    conn.execute(
        sql.SQL(
            "INSERT INTO {table} (installed_rank, version, description, type, script, checksum,"
            " installed_by, execution_time, success)"
            " SELECT COALESCE(MAX(installed_rank), 0) + 1, %s, %s, %s, %s, %s,"
            " COALESCE(%s, current_user), %s, true FROM {table}"
        ).format(table=table_ident(table)),
        (
            version,
            abbreviate_description(description_of(script.name)),
            kind,
            abbreviate_script(_relative(script, location)),
            checksum_of(script),
            installed_by[:100] if installed_by else None,
            execution_time,
        ),
    )


def flyway_key(version: str) -> tuple[int, ...]:
    """How Flyway compares versions: numerically, trailing zeros ignored (``1.0`` is ``1``)."""
    key = version_key(version)
    while len(key) > 1 and key[-1] == 0:
        key = key[:-1]
    return key


def description_of(file: str) -> str:
    """``ResourceNameParser``: the name after the first ``__``, each ``_`` read as a space."""
    stem = file.removesuffix(".sql")
    _, separator, description = stem.partition("__")
    return description.replace("_", " ") if separator else ""


def abbreviate_description(description: str) -> str:
    """``AbbreviationUtils.abbreviateDescription``: at most 200 characters."""
    return description if len(description) <= 200 else description[:197] + "..."


def abbreviate_script(script: str) -> str:
    """``AbbreviationUtils.abbreviateScript``: at most 1000 characters, the end kept."""
    return script if len(script) <= 1000 else "..." + script[-997:]


def checksum_of(path: Path) -> int | None:
    """Flyway's checksum of a file (``ChecksumCalculator``): CRC-32 over its lines as UTF-8,
    each without its line break (``\\n``, ``\\r\\n`` or ``\\r``), a leading BOM dropped, as a
    signed 32-bit number. ``None`` when the file cannot be read."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = _LINE_BREAK.split(text.removeprefix("\ufeff"))
    if lines and lines[-1] == "":
        lines.pop()  # BufferedReader.readLine gives no line after the last break
    crc = zlib.crc32("".join(lines).encode("utf-8"))
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def _relative(script: Path, location: Path) -> str:
    """The script as Flyway records it: its path below the location, with ``/``."""
    try:
        return script.relative_to(location).as_posix()
    except ValueError:
        return script.name


FLYWAY = FlywayHistory()
