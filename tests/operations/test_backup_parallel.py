"""A backup of several tables copied on two connections that read one snapshot.

Against PostgreSQL: a writer in another session commits after the backup's snapshot was taken
and before the helper connection copies anything, or while the backup is half done; every file
must still hold the moment of the snapshot. The files are the same, byte for byte, as those one
connection writes, and they restore exactly. A server that refuses the second connection gets
the backup on one.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from backout.migrations.statements import split
from backout.operations.backup import BackupItem, plan_backup, read_manifest, write_backup
from backout.operations.backup.copiers import HELPER_THREAD, copy_items
from backout.operations.backup.manifest import ManifestItem
from backout.operations.backup.writer import copy_out
from tests.operations.test_backup import everything, restore

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
TABLES = ("alpha", "beta", "gamma", "delta")
DROP = split("\n".join(f"DROP TABLE {t};" for t in TABLES))


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in TABLES:
            conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, note text)")
            conn.execute(
                f"INSERT INTO {table} SELECT g, 'row ' || g FROM generate_series(1, 50) AS g"
            )
        yield conn


class LateHelper(psycopg.Connection[Any]):
    """A helper connection before whose transaction another session commits a row in every
    table: after the backup's snapshot was taken, before the helper reads anything."""

    database_url = ""
    committed = threading.Event()

    def transaction(self, *args: Any, **kwargs: Any) -> Any:
        insert_everywhere(self.database_url)
        self.committed.set()
        return super().transaction(*args, **kwargs)


def test_a_commit_before_the_helper_starts_is_in_no_file(
    conn: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    plan = plan_backup(conn, DROP)
    LateHelper.database_url, LateHelper.committed = database_url, threading.Event()
    helper_copied = threading.Event()
    copied_by: dict[str, str] = {}

    def helper_first(c: psycopg.Connection[Any], item: BackupItem, *rest: Any) -> ManifestItem:
        """The backup's own connection copies only once the helper has copied a table."""
        copied_by[item.table] = threading.current_thread().name
        if copied_by[item.table] == HELPER_THREAD:
            written = copy_out(c, item, *rest)
            helper_copied.set()
            return written
        assert helper_copied.wait(30), "the helper connection copied nothing"
        return copy_out(c, item, *rest)

    with LateHelper.connect(database_url, autocommit=True) as helper, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute("SELECT 1")  # the snapshot the helper must read
        written = copy_items(
            conn,
            [helper],
            plan.items,
            helper_first,
            folder=tmp_path,
            progress=None,
            lock_timeout=5,
            failed=[],
        )

    assert [(i.table, i.rows) for i in written] == [(f"public.{t}", 50) for t in TABLES]
    assert HELPER_THREAD in copied_by.values()
    assert conn.execute("SELECT count(*) FROM alpha").fetchone() == (51,)


def insert_everywhere(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as writer:
        for table in TABLES:
            writer.execute(f"INSERT INTO {table} VALUES (1000, 'committed meanwhile')")


class WriterBetweenCopies:
    """A progress callback: when the helper connection has written its first table, another
    session inserts a row into every table and commits; the backup's own connection waits,
    after its first table, until that commit is done. The tables left are copied after the
    commit. Records, per table, the thread that wrote it and whether after the commit."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.committed = threading.Event()
        self.written: dict[str, tuple[str, bool]] = {}

    def __call__(self, item: BackupItem, _: int) -> None:
        thread = threading.current_thread().name
        self.written[item.table] = (thread, self.committed.is_set())
        if thread == HELPER_THREAD and not self.committed.is_set():
            insert_everywhere(self.url)
            self.committed.set()
        elif thread != HELPER_THREAD:
            assert self.committed.wait(30), "the helper connection wrote nothing"


def test_a_commit_between_two_tables_copies_is_in_neither_file(
    conn: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    plan = plan_backup(conn, DROP)
    writer = WriterBetweenCopies(database_url)

    manifest = write_backup(conn, plan, tmp_path / "b", now=NOW, progress=writer)

    assert [(i.table, i.rows) for i in manifest.items] == [(f"public.{t}", 50) for t in TABLES]
    assert any(late for _, late in writer.written.values()), writer.written
    assert conn.execute("SELECT count(*) FROM alpha").fetchone() == (51,)
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_two_connections_write_the_same_files_as_one(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    plan = plan_backup(conn, DROP)

    one = write_backup(conn, plan, tmp_path / "one", now=NOW, connections=1)
    two = write_backup(conn, plan, tmp_path / "two", now=NOW, connections=2)

    assert one == two
    for item in two.items:
        data = (tmp_path / "two" / item.file).read_bytes()
        assert data == (tmp_path / "one" / item.file).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item.sha256
    assert read_manifest(tmp_path / "two") == two


def test_a_backup_copied_on_two_connections_restores_exactly(
    conn: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    before = [everything(conn, t) for t in TABLES]
    plan = plan_backup(conn, DROP)
    write_backup(conn, plan, tmp_path / "b", now=NOW, connections=2)
    for table in TABLES:
        conn.execute(f"TRUNCATE {table}")

    restore(database_url, tmp_path / "b")

    assert [everything(conn, t) for t in TABLES] == before


@pytest.fixture
def single(conn: psycopg.Connection[Any], database_url: str) -> Iterator[str]:
    """The test database as a role that may hold one connection at a time."""
    user = "backout_single_" + uuid.uuid4().hex[:8]
    name = sql.Identifier(user)
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT 1").format(name))
    conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(name))
    yield make_conninfo(database_url, user=user)
    conn.execute(sql.SQL("DROP OWNED BY {}").format(name))
    conn.execute(sql.SQL("DROP ROLE {}").format(name))


def test_a_server_refusing_a_second_connection_gets_the_backup_on_one(
    single: str, tmp_path: Path
) -> None:
    with psycopg.connect(single, autocommit=True) as only:
        plan = plan_backup(only, DROP)

        manifest = write_backup(only, plan, tmp_path / "b", now=NOW)

    assert [(i.table, i.rows) for i in manifest.items] == [(f"public.{t}", 50) for t in TABLES]
