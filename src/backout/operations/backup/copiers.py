"""The connections that copy a backup's items out, all reading one snapshot: :func:`copy_items`.

The first is the backup's own connection, in its repeatable-read, read-only transaction. With
two items or more, helper connections copy beside it: each opens a repeatable-read, read-only
transaction that imports the backup transaction's exported snapshot (``pg_export_snapshot``,
then ``SET TRANSACTION SNAPSHOT``, PostgreSQL's way for pg_dump's parallel jobs), so every
file holds the same moment of the database, whatever commits meanwhile. Each connection takes
the next item nobody has taken; the results keep the plan's order. The server's work for one
table and backout's for another then run on two cores instead of one.

A helper's failure stops the others from taking new items and is raised in the caller's thread
as it came (a lock timeout is then retried by the caller like any other); a failure or an
interruption of the caller's thread cancels what the helpers are copying before it goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from backout.database.connection import set_timeouts
from backout.operations.backup.manifest import ManifestItem
from backout.operations.backup.planning import BackupItem
from backout.operations.backup.stream import Progress

HELPER_THREAD = "backup-helper"
"""The name of the threads the helper connections copy in."""

CopyOut = Callable[[psycopg.Connection[Any], BackupItem, Path, Progress | None], ManifestItem]
"""How one item is copied on one connection into the folder."""


def copy_items(
    conn: psycopg.Connection[Any],
    helpers: Sequence[psycopg.Connection[Any]],
    items: Sequence[BackupItem],
    copy_out: CopyOut,
    *,
    folder: Path,
    progress: Progress | None,
    lock_timeout: float,
    failed: list[BackupItem],
) -> list[ManifestItem]:
    """Copy ``items`` on ``conn`` (inside its repeatable-read transaction) and on ``helpers``,
    all in ``conn``'s snapshot; the written items in ``items``' order. The item whose copy
    failed is appended to ``failed`` before the error is raised."""
    work = _Work(items, failed)
    if len(items) < 2 or not helpers:
        work.drain(conn, copy_out, folder, progress)
        return work.written()
    row = conn.execute("SELECT pg_export_snapshot()").fetchone()
    snapshot = str(row[0]) if row else ""
    threads = [
        threading.Thread(
            target=_helper,
            args=(work, helper, snapshot, copy_out, folder, progress, lock_timeout),
            name=HELPER_THREAD,
            daemon=True,
        )
        for helper in helpers[: len(items) - 1]
    ]
    for thread in threads:
        thread.start()
    try:
        work.drain(conn, copy_out, folder, progress)
    except BaseException:
        work.stop()
        for helper in helpers:
            helper.cancel_safe()
        raise
    finally:
        for thread in threads:
            thread.join()
    work.raise_failure()
    return work.written()


def _helper(
    work: _Work,
    helper: psycopg.Connection[Any],
    snapshot: str,
    copy_out: CopyOut,
    folder: Path,
    progress: Progress | None,
    lock_timeout: float,
) -> None:
    """One helper connection's share, in a transaction reading ``snapshot``."""
    try:
        with helper.transaction():
            helper.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            helper.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            set_timeouts(helper, lock_timeout=lock_timeout, local=True)
            work.drain(helper, copy_out, folder, progress)
    except BaseException as exc:  # raised again in the caller's thread
        work.fail(exc)


class _Work:
    """The items still to copy, those written, and the first failure; shared by the threads."""

    def __init__(self, items: Sequence[BackupItem], failed: list[BackupItem]) -> None:
        self._items = items
        self._next = 0
        self._done: dict[int, ManifestItem] = {}
        self._failed = failed
        self._failure: BaseException | None = None
        self._stopped = False
        self._lock = threading.Lock()

    def drain(
        self,
        conn: psycopg.Connection[Any],
        copy_out: CopyOut,
        folder: Path,
        progress: Progress | None,
    ) -> None:
        """Copy the next item not yet taken on ``conn`` until none is left (or one failed)."""
        while (index := self._take()) is not None:
            item = self._items[index]
            try:
                written = copy_out(conn, item, folder, progress)
            except BaseException:
                with self._lock:
                    self._failed.append(item)
                raise
            with self._lock:
                self._done[index] = written

    def _take(self) -> int | None:
        with self._lock:
            if self._stopped or self._failure is not None or self._next >= len(self._items):
                return None
            self._next += 1
            return self._next - 1

    def stop(self) -> None:
        with self._lock:
            self._stopped = True

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = exc

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def written(self) -> list[ManifestItem]:
        return [self._done[i] for i in sorted(self._done)]
