"""What the fault tests synchronise on: the server's view of backout's sessions.

A fault is caused at a known point by watching ``pg_stat_activity`` (the query a backout session
runs, what it waits for), never by sleeping a guessed time. backout runs as a real process, so
``kill -9`` leaves what a crash leaves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg

PATIENCE = 30.0
"""Seconds to wait for backout to reach the awaited point before the test fails."""
POLL = 0.02


class NeverReached(AssertionError):
    """backout never reached the point the test waited for."""


def backend(url: str, where: str, *, patience: float = PATIENCE, anywhere: bool = False) -> int:
    """The pid of the first backout session matching ``where`` (SQL over pg_stat_activity,
    e.g. ``"query LIKE '%pg_sleep%'"`` or ``"wait_event_type = 'Lock'"``), once one does: in
    the test's own database (tests run side by side on one server), or ``anywhere``."""
    database = "" if anywhere else "AND datname = current_database() "
    query = (
        f"SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'backout%' {database}"
        f"AND pid <> pg_backend_pid() AND ({where}) ORDER BY backend_start LIMIT 1"
    )
    deadline = time.monotonic() + patience
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(query).fetchone()
            if row is not None:
                return int(row[0])
            time.sleep(POLL)
    raise NeverReached(f"no backout session matched {where!r} within {patience:g} s")


def terminate(url: str, pid: int) -> None:
    """``pg_terminate_backend`` of one of backout's sessions."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def no_backout_sessions(url: str, *, patience: float = PATIENCE) -> None:
    """Wait until the test's database has no backout session (a killed client's backends go
    away); other databases' sessions (another test running beside this one) do not count."""
    deadline = time.monotonic() + patience
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'backout%'"
                " AND datname = current_database()"
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(POLL)
    raise NeverReached("backout sessions were still on the server")


@contextmanager
def running(
    args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """``backout ARGS`` as a process of its own (in ``env``, else this process's environment);
    killed (SIGKILL) if still running at the end."""
    env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "backout", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def kill_9(process: subprocess.Popen[str]) -> None:
    """SIGKILL: no cleanup of any kind runs in backout."""
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
