"""Liquibase's history table, ``databasechangelog``, read and written as Liquibase does.

The source of truth is Liquibase's own code (liquibase/liquibase, Liquibase 4.x,
liquibase-standard/src/main/java/liquibase/):

- the table, ``sqlgenerator/core/CreateDatabaseChangeLogTableGenerator``: fourteen columns,
  no primary key; on PostgreSQL Liquibase's unquoted upper-case names are lower case
  (``id``, ``author``, ``filename``...), ``datetime`` is ``TIMESTAMP WITHOUT TIME ZONE``;
- the lock, ``CreateDatabaseChangeLogLockTableGenerator``: ``databasechangeloglock (id INT
  PRIMARY KEY, locked BOOLEAN NOT NULL, lockgranted TIMESTAMP, lockedby VARCHAR(255))`` in the
  same schema;
- a changeset run, ``MarkChangeSetRanGenerator``: one row per changeset, ``dateexecuted`` the
  database's ``NOW()``, ``orderexecuted`` one more than the largest
  (``GetNextChangeSetSequenceValueGenerator``), ``exectype`` ``EXECUTED``, ``description``
  ``sql`` for a formatted SQL changeset, ``comments`` its ``--comment``, ``deployment_id`` the
  run's ten digits; ``FAILED`` and ``SKIPPED`` are never written by it;
- a rollback, ``RemoveChangeSetRanStatusGenerator``: ``DELETE ... WHERE ID = ? AND AUTHOR = ?
  AND FILENAME = ?``: the changeset's row goes, and ``liquibase status`` lists it again as not
  deployed; ``liquibase update`` runs it again.

A changeset is applied when its row's ``exectype`` is ``EXECUTED``, ``RERAN`` or ``MARK_RAN``
(``ChangeSet.ExecType``). A ``FAILED`` row (older Liquibase versions wrote them) and a held
``databasechangeloglock`` are troubles, explained and never cleared.

A row matches a changeset of the folder when its ``id`` and ``author`` are the changeset's and
its ``filename`` ends with the file's name: Liquibase records the path it was given
(``db/changelog/002-ledger.sql``, ``classpath:/db/...``), which the folder alone cannot know.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

import psycopg
from psycopg import sql

from backout.database.histories.base import Recorded, Trouble
from backout.database.history import Applied, table_ident
from backout.errors import MalformedMigrationError
from backout.migrations.entry import Entry
from backout.migrations.formats.liquibase import ChangesetEntry, LiquibaseFormat

REQUIRED = frozenset(
    {"id", "author", "filename", "dateexecuted", "orderexecuted", "exectype", "md5sum"}
)
APPLIED_TYPES = frozenset({"EXECUTED", "RERAN", "MARK_RAN"})
LOCK_TABLE = "databasechangeloglock"


@dataclass(frozen=True)
class Row:
    """One row of ``databasechangelog``."""

    id: str
    author: str
    filename: str
    dateexecuted: datetime
    orderexecuted: int
    exectype: str

    @property
    def file(self) -> str:
        """The file's name, whatever path Liquibase was given."""
        return PurePosixPath(self.filename.replace("\\", "/")).name

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.id, self.author, self.file)

    @property
    def key(self) -> str:
        """Liquibase's own name of the changeset: ``<path>::<id>::<author>``."""
        return f"{self.filename}::{self.id}::{self.author}"


class LiquibaseHistory:
    tool = "liquibase"
    default_table = "databasechangelog"

    def recognises(self, columns: Mapping[str, str]) -> bool:
        return set(columns) >= REQUIRED

    def create(self, conn: psycopg.Connection[Any], table: str) -> None:
        # CreateDatabaseChangeLogTableGenerator, as Liquibase creates it on PostgreSQL.
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} ("
                " id VARCHAR(255) NOT NULL,"
                " author VARCHAR(255) NOT NULL,"
                " filename VARCHAR(255) NOT NULL,"
                " dateexecuted TIMESTAMP WITHOUT TIME ZONE NOT NULL,"
                " orderexecuted INTEGER NOT NULL,"
                " exectype VARCHAR(10) NOT NULL,"
                " md5sum VARCHAR(35),"
                " description VARCHAR(255),"
                " comments VARCHAR(255),"
                " tag VARCHAR(255),"
                " liquibase VARCHAR(20),"
                " contexts VARCHAR(255),"
                " labels VARCHAR(255),"
                " deployment_id VARCHAR(10))"
            ).format(table_ident(table))
        )

    def read(self, conn: psycopg.Connection[Any], table: str, entries: Sequence[Entry]) -> Recorded:
        rows = read_rows(conn, table)
        troubles = [*failed(rows, entries), *lock_troubles(conn, table)]
        return Recorded(applied_of(rows, entries), tuple(troubles))

    def record_applied(
        self,
        conn: psycopg.Connection[Any],
        table: str,
        entry: Entry,
        entries: Sequence[Entry],
        applied: Applied,
    ) -> None:
        insert_row(conn, table, changeset_of(entry), filename_for(read_rows(conn, table), entry))

    def record_rolled_back(
        self, conn: psycopg.Connection[Any], table: str, entry: Entry, entries: Sequence[Entry]
    ) -> None:
        """Delete the changeset's row, as ``RemoveChangeSetRanStatusGenerator`` does (every
        row of it, when Liquibase recorded it under more than one path)."""
        changeset = changeset_of(entry)
        delete = sql.SQL("DELETE FROM {} WHERE id = %s AND author = %s AND filename = %s")
        for row in read_rows(conn, table):
            if matches(row, changeset):
                conn.execute(delete.format(table_ident(table)), (row.id, row.author, row.filename))


def read_rows(conn: psycopg.Connection[Any], table: str) -> list[Row]:
    """Every row in the order Liquibase reads them (``dateexecuted``, ``orderexecuted``);
    ``dateexecuted`` (a ``TIMESTAMP`` Liquibase fills with ``NOW()``) in the session's zone."""
    found = conn.execute(
        sql.SQL(
            "SELECT id, author, filename, dateexecuted::timestamptz, orderexecuted, exectype"
            " FROM {} ORDER BY dateexecuted, orderexecuted"
        ).format(table_ident(table))
    ).fetchall()
    return [Row(*row) for row in found]


def matches(row: Row, changeset: ChangesetEntry) -> bool:
    return row.identity == identity(changeset)


def identity(changeset: ChangesetEntry) -> tuple[str, str, str]:
    """What a row must hold to be this changeset's: its id, author and file name."""
    return (changeset.changeset, changeset.author, changeset.path.name)


def by_identity(entries: Sequence[Entry]) -> dict[tuple[str, str, str], ChangesetEntry]:
    return {identity(e): e for e in entries if isinstance(e, ChangesetEntry) and e.changeset}


def applied_of(rows: Sequence[Row], entries: Sequence[Entry]) -> dict[str, Applied]:
    """The applied changesets, by the catalog's version; a row no changeset matches by
    Liquibase's own name for it."""
    changesets = by_identity(entries)
    applied: dict[str, Applied] = {}
    for row in rows:
        if row.exectype not in APPLIED_TYPES:
            continue
        entry = changesets.get(row.identity)
        version = entry.version if entry and entry.version else row.key
        applied[version] = Applied(
            version=version,
            name=entry.name if entry else row.key,
            applied_at=row.dateexecuted,
            applied_by=None,
            checksum=None,
        )
    return applied


def failed(rows: Sequence[Row], entries: Sequence[Entry]) -> list[Trouble]:
    changesets = by_identity(entries)
    troubles = []
    for row in rows:
        if row.exectype != "FAILED":
            continue
        entry = changesets.get(row.identity)
        troubles.append(
            Trouble(
                entry.name if entry else row.key,
                f"Liquibase recorded changeset {row.author}:{row.id} of {row.filename} as FAILED "
                f"({row.dateexecuted:%Y-%m-%d %H:%M:%S}): it may have stopped part-way",
                "check what its statements left, fix the schema by hand, then let `liquibase "
                "update` run it again (or `liquibase changelog-sync` if it is in fact done); "
                "backout never rewrites the row",
            )
        )
    return troubles


def lock_troubles(conn: psycopg.Connection[Any], table: str) -> list[Trouble]:
    """A set ``databasechangeloglock`` (in the history table's schema): a run under way, or
    one that died holding it."""
    schema, _, _ = table.rpartition(".")
    lock = f"{schema}.{LOCK_TABLE}" if schema else LOCK_TABLE
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (lock,)).fetchone()
    if not exists or not exists[0]:
        return []
    held = conn.execute(
        sql.SQL("SELECT lockgranted, lockedby FROM {} WHERE locked ORDER BY id").format(
            table_ident(lock)
        )
    ).fetchall()
    return [
        Trouble(
            None,
            f"a Liquibase run holds (or left) its lock in {lock} since "
            f"{granted or 'an unrecorded time'}, by {by or 'an unrecorded host'}",
            "wait for that run to end; once you are sure none runs (a run killed mid-update "
            "leaves the lock set), `liquibase release-locks`; backout never releases it",
        )
        for granted, by in held
    ]


def insert_row(
    conn: psycopg.Connection[Any], table: str, changeset: ChangesetEntry, filename: str
) -> None:
    """The row ``MarkChangeSetRanGenerator`` inserts for a changeset run for the first time.

    ``md5sum`` is left empty: backout does not compute Liquibase's checksum, and Liquibase
    fills in an empty checksum on its next ``update`` (as after ``clear-checksums``).
    ``liquibase`` (the Liquibase version that ran it) is empty too: backout is none."""
    file = changeset.read()
    conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(table_ident(table)))
    conn.execute(
        sql.SQL(
            "INSERT INTO {table} (id, author, filename, dateexecuted, orderexecuted, md5sum,"
            " description, comments, exectype, contexts, labels, liquibase, deployment_id)"
            " SELECT %s, %s, %s, NOW(), COALESCE(MAX(orderexecuted), 0) + 1, NULL, 'sql', %s,"
            " 'EXECUTED', %s, %s, NULL, %s FROM {table}"
        ).format(table=table_ident(table)),
        (
            changeset.changeset,
            changeset.author,
            filename,
            (file.header_value("comment") or "").strip()[:250],
            file.header_value("context") or file.header_value("contextFilter") or None,
            file.header_value("labels") or None,
            deployment_id(),
        ),
    )


def filename_for(rows: Sequence[Row], entry: Entry) -> str:
    """The ``filename`` Liquibase would record: the path already recorded for the same file;
    else the file's name under the directory the table's other rows record; else its name."""
    for row in rows:
        if row.file == entry.path.name:
            return row.filename
    for row in reversed(rows):
        parent = PurePosixPath(row.filename.replace("\\", "/")).parent
        if str(parent) != ".":
            return f"{parent}/{entry.path.name}"
    return entry.path.name


def deployment_id() -> str:
    """``AbstractChangeLogHistoryService.generateDeploymentId``: the last ten digits of the
    time in milliseconds."""
    return str(time.time_ns() // 1_000_000)[-10:]


def changeset_of(entry: Entry) -> ChangesetEntry:
    """``entry`` as the changeset it names (a plain entry is looked up in its folder)."""
    if isinstance(entry, ChangesetEntry) and entry.changeset:
        return entry
    for found in LiquibaseFormat().entries(entry.folder):
        if found.path == entry.path and found.name == entry.name and found.changeset:
            return found
    raise MalformedMigrationError(
        entry.path,
        f"{entry.name} is not a Liquibase changeset (`--changeset <author>:<id>`): Liquibase "
        "records changesets only",
    )


LIQUIBASE = LiquibaseHistory()
