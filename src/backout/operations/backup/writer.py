"""Write a backup plan to a folder: one consistent snapshot, checksummed, with its manifest.

:func:`write_backup` streams each item out with ``COPY ... TO STDOUT (FORMAT binary)`` inside
one repeatable-read, read-only transaction, so the files are one consistent snapshot, then
writes ``SHA256SUMS``, ``RESTORE.md`` and, last, ``manifest.json``. A backup is never
overwritten. Its lock waits are bounded (``lock_timeout``): behind a session holding a table
``ACCESS EXCLUSIVE``, the snapshot is given up, its files removed, and taken again after a
backoff; then the backup fails naming that session (exit 5). Identifiers only ever reach SQL
through :mod:`psycopg.sql`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import psycopg
import psycopg.errors
from psycopg import pq, sql

from backout.database.connection import set_timeouts
from backout.database.waits import RunOptions, Waits
from backout.errors import RefusedError
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

BLOCK = 1 << 20
"""Bytes written (and hashed) at a time."""
PROGRESS_STEP = 1 << 20
"""Bytes between two progress reports."""

Progress = Callable[[BackupItem, int], None]
"""Called while an item is written, with the bytes written so far."""


def write_backup(
    conn: psycopg.Connection[Any],
    plan: BackupPlan,
    folder: Path,
    *,
    progress: Progress | None = None,
    now: datetime,
    waits: Waits | None = None,
) -> Manifest:
    """Write ``plan``'s items to ``folder`` (which must not hold anything) in one snapshot;
    lock waits bounded and retried (``waits``, else the defaults)."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise RefusedError(
            f"the backup folder {folder} is not empty; a backup is never overwritten",
            hint="move it away or choose another folder",
        )
    folder.mkdir(parents=True, exist_ok=True)
    items: list[ManifestItem] = []
    waits = waits or Waits()

    def attempt() -> tuple[str, str]:
        _start_over(folder, items)
        return _copy_all(conn, plan, folder, progress, items, waits.options)

    try:
        database, version = waits.retrying(conn, "the backup", attempt)
    except psycopg.Error as exc:
        current = plan.items[len(items)].table if len(items) < len(plan.items) else "?"
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
    plan: BackupPlan,
    folder: Path,
    progress: Progress | None,
    items: list[ManifestItem],
    options: RunOptions,
) -> tuple[str, str]:
    """Copy every item out in one snapshot: ``(database, server version)``.

    ``items`` grows as items are written, so that on failure the caller knows which one failed.
    """
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        set_timeouts(conn, lock_timeout=options.lock_timeout, local=True)
        database, version = conn.execute(
            "SELECT current_database(), current_setting('server_version')"
        ).fetchone() or ("", "")
        for item in plan.items:
            items.append(_copy_out(conn, item, folder, progress))
    return str(database), str(version)


def _start_over(folder: Path, items: list[ManifestItem]) -> None:
    """Before an attempt: nothing of an earlier, abandoned one (the folder started empty)."""
    items.clear()
    for leftover in folder.iterdir():
        leftover.unlink()


def _copy_out(
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
        rows, size, digest = _stream(conn, query.as_bytes(conn), out, item, progress)
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


def _stream(
    conn: psycopg.Connection[Any],
    query: bytes,
    out: BinaryIO,
    item: BackupItem,
    progress: Progress | None,
) -> tuple[int, int, str]:
    """Run ``COPY ... TO STDOUT`` and write what it sends to ``out``: ``(rows, bytes, sha256)``.

    It reads with libpq's own loop (:mod:`psycopg.pq`) and writes in blocks of
    :data:`BLOCK` bytes: the server sends one message per row, and psycopg's ``Copy`` iterator
    costs about twice as much per row, which is most of the time on a large table. On any
    failure or interruption the COPY is cancelled and drained, so the connection's
    transaction can still be rolled back.
    """
    pgconn = conn.pgconn
    digest = hashlib.sha256()
    block = bytearray()
    size = reported = 0
    pgconn.send_query(query)
    try:
        started = pgconn.get_result()
        if started is None or started.status != pq.ExecStatus.COPY_OUT:
            raise _copy_error(started, pgconn)
        while True:
            length, data = pgconn.get_copy_data(0)
            if length < 0:
                break
            block += data
            if len(block) >= BLOCK:
                out.write(block)
                digest.update(block)
                size += len(block)
                block.clear()
                if progress is not None and size - reported >= PROGRESS_STEP:
                    progress(item, size)
                    reported = size
        finished = pgconn.get_result()
        if finished is None or finished.status != pq.ExecStatus.COMMAND_OK:
            raise _copy_error(finished, pgconn)
    except BaseException:
        _abandon(pgconn)
        raise
    while pgconn.get_result() is not None:
        pass
    out.write(block)
    digest.update(block)
    size += len(block)
    rows = int(finished.command_status.split()[-1]) if finished.command_status else 0
    return rows, size, digest.hexdigest()


def _copy_error(result: pq.abc.PGresult | None, pgconn: pq.abc.PGconn) -> psycopg.Error:
    """The server's error, as the class of its SQLSTATE (a lock timeout is retried)."""
    message = result.error_message if result is not None else pgconn.error_message
    text = message.decode("utf-8", "replace").strip() or "COPY failed"
    code = result.error_field(pq.DiagnosticField.SQLSTATE) if result is not None else None
    if code is None:
        return psycopg.DatabaseError(text)
    try:
        kind = psycopg.errors.lookup(code.decode())
    except KeyError:
        return psycopg.DatabaseError(text)
    return kind(text)


def _abandon(pgconn: pq.abc.PGconn) -> None:
    """Cancel a COPY in flight and read what is left, so the connection is usable again."""
    cancel = pgconn.get_cancel()
    cancel.cancel()
    while pgconn.get_copy_data(0)[0] >= 0:
        pass
    while pgconn.get_result() is not None:
        pass


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
