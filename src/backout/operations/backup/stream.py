"""One ``COPY ... TO STDOUT`` streamed into a file: :func:`stream`.

The rows are read with libpq's own loop (:mod:`psycopg.pq`) and gathered into blocks of
:data:`BLOCK` bytes that a :class:`_Sink` thread writes and hashes meanwhile, so the memory a
copy holds stays a few blocks whatever the table's size. On any failure or interruption the
COPY is cancelled and drained, so the connection's transaction can still be rolled back.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import queue
import select
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

import psycopg
import psycopg.errors
from psycopg import pq

from backout.operations.backup.planning import BackupItem

BLOCK = 1 << 20
"""Bytes written (and hashed) at a time."""
QUEUED = 4
"""Blocks that may wait to be written: the memory a copy holds stays about this many
:data:`BLOCK` sizes, however large the table."""
PROGRESS_STEP = 1 << 20
"""Bytes between two progress reports."""
POLL = 1.0
"""Seconds between two looks at the connection while the server has not answered yet."""

Progress = Callable[[BackupItem, int], None]
"""Called while an item is written, with the bytes written so far."""
M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter: allocations from this size on are mapped apart, and given
back whole when freed."""


def stream(
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
    _steady_heap()
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


@functools.cache
def _steady_heap() -> None:
    """Keep the blocks out of the heap, so that a backup's memory stays flat however large
    the table (glibc only; elsewhere nothing changes).

    glibc maps a large allocation apart from the heap only until the first such one is freed;
    then it raises its threshold above that size, and the blocks, allocated by this thread and
    freed by the writer, come from the heap, which fragments as the table grows (measured:
    41 MiB at 1,000,000 rows, 54 MiB at 5,000,000; with a fixed threshold 40 and 41). A
    fixed threshold below :data:`BLOCK` keeps mapping them, at no measurable cost."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, BLOCK // 2)
    except (OSError, AttributeError):  # not glibc: no such function
        pass


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
