"""Write a backup plan to a folder: one consistent snapshot, checksummed, with its manifest.

:func:`write_backup` streams each item out with ``COPY ... TO STDOUT (FORMAT binary)``
(:mod:`.stream`) inside one repeatable-read, read-only transaction, whose tables are locked
``ACCESS SHARE`` before its snapshot is taken; with two items or more a helper connection copies
beside it in the same snapshot (:mod:`.copiers`). Then it writes ``SHA256SUMS``, ``RESTORE.md``
and, last, ``manifest.json``. A backup is never overwritten. Its lock waits are bounded
(``lock_timeout``): behind a session holding a table ``ACCESS EXCLUSIVE``, the snapshot is given
up, its files removed, and taken again after a backoff; then the backup fails naming that
session (exit 5). Identifiers only ever reach SQL through :mod:`psycopg.sql`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from backout.database.connection import DatabaseError, connect, set_timeouts
from backout.database.waits import RunOptions, Waits, same_server
from backout.errors import RefusedError
from backout.operations.backup.copiers import copy_items
from backout.operations.backup.manifest import (
    CHECKSUMS,
    MANIFEST,
    RESTORE,
    BackupError,
    Manifest,
    ManifestItem,
)
from backout.operations.backup.planning import BackupItem, BackupPlan
from backout.operations.backup.restore import restore_commands, restore_guide
from backout.operations.backup.stream import Progress, stream

CONNECTIONS = 2
"""Connections copying a backup of two items or more: on two cores, the server's work for one
table runs beside backout's for another (more connections only wait for a core there)."""
LOCKABLE = ("r", "p")
"""The relation kinds ``LOCK TABLE`` takes (not materialized views nor foreign tables: their
COPY takes its lock when it starts)."""


def write_backup(
    conn: psycopg.Connection[Any],
    plan: BackupPlan,
    folder: Path,
    *,
    progress: Progress | None = None,
    now: datetime,
    waits: Waits | None = None,
    connections: int = CONNECTIONS,
) -> Manifest:
    """Write ``plan``'s items to ``folder`` (which must not hold anything) in one snapshot, on
    up to ``connections`` connections; lock waits bounded and retried (``waits``, else the
    defaults)."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise RefusedError(
            f"the backup folder {folder} is not empty; a backup is never overwritten",
            hint="move it away or choose another folder",
        )
    folder.mkdir(parents=True, exist_ok=True)
    items: list[ManifestItem] = []
    failed: list[BackupItem] = []
    waits = waits or Waits()

    def attempt() -> tuple[str, str]:
        _start_over(folder, items, failed)
        return _copy_all(conn, helpers, plan, folder, progress, items, failed, waits.options)

    try:
        with _helpers(conn, min(connections, len(plan.items)) - 1) as helpers:
            database, version = waits.retrying(conn, "the backup", attempt)
    except psycopg.Error as exc:
        current = failed[0].table if failed else "?"
        raise BackupError(
            f"the backup of {current} failed: {_first_line(exc)}; nothing was rolled back",
            hint=f"the partial backup is in {folder}",
        ) from None
    except OSError as exc:
        raise BackupError(
            f"could not write the backup in {folder}: {exc.strerror or exc}; "
            "nothing was rolled back",
            hint="free some disk space or configure another `backups` folder",
        ) from None
    manifest = Manifest(now, database, version, tuple(items), plan.warnings)
    _write_record(folder, manifest)
    return manifest


def _write_record(folder: Path, manifest: Manifest) -> None:
    """The checksums, the guide and, last, the manifest: its presence marks a finished backup."""
    checksums = "".join(f"{i.sha256}  {i.file}\n" for i in manifest.items)
    (folder / CHECKSUMS).write_text(checksums)
    (folder / RESTORE).write_text(restore_guide(manifest), encoding="utf-8")
    (folder / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")


def _copy_all(
    conn: psycopg.Connection[Any],
    helpers: list[psycopg.Connection[Any]],
    plan: BackupPlan,
    folder: Path,
    progress: Progress | None,
    items: list[ManifestItem],
    failed: list[BackupItem],
    options: RunOptions,
) -> tuple[str, str]:
    """Copy every item out in one snapshot, taken once their tables are locked: ``(database,
    server version)``. ``items`` holds what was written; on failure ``failed`` names the item
    that failed."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        set_timeouts(conn, lock_timeout=options.lock_timeout, local=True)
        _lock(conn, plan.items, failed)
        database, version = conn.execute(
            "SELECT current_database(), current_setting('server_version')"
        ).fetchone() or ("", "")
        written = copy_items(
            conn,
            helpers,
            plan.items,
            copy_out,
            folder=folder,
            progress=progress,
            lock_timeout=options.lock_timeout,
            failed=failed,
        )
        references = _references(conn, [item.table for item in written])
        items[:] = [replace(i, references=references.get(i.table, ())) for i in written]
    return str(database), str(version)


def _lock(
    conn: psycopg.Connection[Any], items: tuple[BackupItem, ...], failed: list[BackupItem]
) -> None:
    """``ACCESS SHARE`` on the items' tables, waited for here, on the connection whose waits
    are watched (blockers named, the queue watchdog), before the snapshot exists: the helpers'
    COPY then find their tables' locks compatible with one already held. A table that cannot
    be locked (gone since the plan) goes into ``failed``."""
    for item in items:
        if item.kind not in LOCKABLE:
            continue
        only = sql.SQL("ONLY " if item.kind == "r" else "")  # a partitioned table with its parts
        relation = sql.Identifier(item.schema, item.name)
        try:
            conn.execute(sql.SQL("LOCK TABLE {}{} IN ACCESS SHARE MODE").format(only, relation))
        except psycopg.Error:
            failed.append(item)
            raise


@contextmanager
def _helpers(conn: psycopg.Connection[Any], count: int) -> Iterator[list[psycopg.Connection[Any]]]:
    """Up to ``count`` more connections to ``conn``'s server and database; fewer (none) when
    the server refuses one (all its connection slots taken, say): the backup goes on without."""
    opened: list[psycopg.Connection[Any]] = []
    with ExitStack() as stack:
        for _ in range(max(count, 0)):
            try:
                helper = connect(same_server(conn), autocommit=True)
            except DatabaseError:
                break
            opened.append(stack.enter_context(helper))
        yield opened


_FOREIGN_KEYS = """
SELECT DISTINCT child.name, parent.name
FROM unnest(%(tables)s::text[]) AS child(name)
JOIN unnest(%(tables)s::text[]) AS parent(name) ON parent.name <> child.name
JOIN pg_constraint con ON con.contype = 'f'
  AND con.conrelid = to_regclass(child.name) AND con.confrelid = to_regclass(parent.name)
"""


def _references(conn: psycopg.Connection[Any], tables: list[str]) -> dict[str, tuple[str, ...]]:
    """Each table to the others among ``tables`` it references by a foreign key."""
    found: dict[str, tuple[str, ...]] = {}
    for child, parent in conn.execute(_FOREIGN_KEYS, {"tables": tables}).fetchall():
        found[child] = (*found.get(child, ()), str(parent))
    return found


def _start_over(folder: Path, items: list[ManifestItem], failed: list[BackupItem]) -> None:
    """Before an attempt: nothing of an earlier, abandoned one (the folder started empty)."""
    items.clear()
    failed.clear()
    for leftover in folder.iterdir():
        leftover.unlink()


def copy_out(
    conn: psycopg.Connection[Any], item: BackupItem, folder: Path, progress: Progress | None
) -> ManifestItem:
    columns = sql.SQL(", ").join(map(sql.Identifier, item.columns))
    relation = sql.Identifier(item.schema, item.name)
    if item.kind == "r":
        query = sql.SQL("COPY {} ({}) TO STDOUT (FORMAT binary)").format(relation, columns)
    else:  # partitioned tables, materialized and foreign ones: COPY needs a query
        query = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)").format(
            columns, relation
        )
    with (folder / item.file).open("wb") as out:
        rows, size, digest = stream(conn, query.as_bytes(conn), out, item, progress)
    if progress is not None:
        progress(item, size)
    return ManifestItem(
        table=item.table,
        columns=item.columns,
        key=item.key,
        reason=item.reason,
        file=item.file,
        rows=rows,
        bytes=size,
        sha256=digest,
        restore=restore_commands(item),
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
