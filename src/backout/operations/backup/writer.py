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
import queue
import select
import threading
from collections.abc import Callable
from dataclasses import replace
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
QUEUED = 4
"""Blocks that may wait to be written: the memory a backup holds stays about this many
:data:`BLOCK` sizes, however large the table."""
PROGRESS_STEP = 1 << 20
"""Bytes between two progress reports."""
POLL = 1.0
"""Seconds between two looks at the connection while the server has not answered yet."""

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
        references = _references(conn, [item.table for item in items])
        items[:] = [replace(i, references=references.get(i.table, ())) for i in items]
    return str(database), str(version)


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

    It reads with libpq's own loop (:mod:`psycopg.pq`), gathering the rows into blocks of
    :data:`BLOCK` bytes that a :class:`_Sink` thread writes and hashes meanwhile: the server
    sends one message per row, so the loop does as little as it can per row (psycopg's
    ``Copy`` iterator costs about twice as much). On any failure or interruption the COPY is
    cancelled and drained, so the connection's transaction can still be rolled back.
    """
    pgconn = conn.pgconn
    pgconn.send_query(query)
    copying = False
    with _Sink(out, item, progress) as sink:
        try:
            started = _first_result(pgconn)
            if started is None or started.status != pq.ExecStatus.COPY_OUT:
                raise _copy_error(started, pgconn)
            copying = True
            _receive(pgconn, sink)
            copying = False
            finished = pgconn.get_result()
            if finished is None or finished.status != pq.ExecStatus.COMMAND_OK:
                raise _copy_error(finished, pgconn)
        except BaseException:
            _abandon(pgconn, copying=copying)
            raise
        while pgconn.get_result() is not None:
            pass
    rows = int(finished.command_status.split()[-1]) if finished.command_status else 0
    return rows, sink.size, sink.digest.hexdigest()


def _first_result(pgconn: pq.abc.PGconn) -> pq.abc.PGresult | None:
    """The COPY's first result, waited for on the socket rather than inside libpq: the wait
    (for a table lock, say) then lets the thread that names the blockers run."""
    pgconn.flush()
    pgconn.consume_input()
    while pgconn.is_busy():
        select.select([pgconn.socket], [], [], POLL)
        pgconn.consume_input()
    return pgconn.get_result()


def _receive(pgconn: pq.abc.PGconn, sink: _Sink) -> None:
    """The COPY's rows, gathered into blocks handed to ``sink``: the per-row loop, kept to a
    libpq call, one append and one addition."""
    get = pgconn.get_copy_data
    block = bytearray()
    gathered = 0
    while True:
        length, data = get(0)
        if length < 0:
            break
        block += data
        gathered += length
        if gathered >= BLOCK:
            sink.put(block)
            block = bytearray()
            gathered = 0
    sink.put(block)


class _Sink:
    """Where a COPY's data goes: blocks written and hashed by a thread of their own (both
    release the GIL), so that the hashing runs beside the loop reading the rows; a few blocks
    at most wait in between, so the memory used stays flat however large the table. A
    progress report every :data:`PROGRESS_STEP` bytes, from the caller's thread."""

    def __init__(self, out: BinaryIO, item: BackupItem, progress: Progress | None) -> None:
        self.out, self.item, self.progress = out, item, progress
        self.digest = hashlib.sha256()
        self.size = self.reported = 0
        self.failure: BaseException | None = None
        self.blocks: queue.Queue[bytearray | None] = queue.Queue(maxsize=QUEUED)
        self.thread = threading.Thread(target=self._drain, name="backup-writer", daemon=True)

    def __enter__(self) -> _Sink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.blocks.put(None)
        self.thread.join()
        if self.failure is not None and exc[0] is None:
            raise self.failure

    def put(self, block: bytearray) -> None:
        if self.failure is not None:
            raise self.failure
        if not block:
            return
        self.blocks.put(block)
        self.size += len(block)
        if self.progress is not None and self.size - self.reported >= PROGRESS_STEP:
            self.progress(self.item, self.size)
            self.reported = self.size

    def _drain(self) -> None:
        while (block := self.blocks.get()) is not None:
            if self.failure is None:
                try:
                    self.out.write(block)
                    self.digest.update(block)
                except BaseException as exc:  # handed to the reading thread, raised there
                    self.failure = exc


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


def _abandon(pgconn: pq.abc.PGconn, *, copying: bool) -> None:
    """Cancel a COPY in flight and read what is left, so the connection is usable again (a
    COPY the server refused, a lock timeout for one, has only its results left to read)."""
    if copying:
        pgconn.get_cancel().cancel()
        while pgconn.get_copy_data(0)[0] >= 0:
            pass
    while pgconn.get_result() is not None:
        pass


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
