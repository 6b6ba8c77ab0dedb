"""``backout restore`` killed (SIGKILL) in the middle: the one transaction leaves nothing behind,
and the same command run again brings every row back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from tests.faults.activity import backend, kill_9, no_backout_sessions, running
from tests.operations.test_restore import incident, project, settings, state

__all__ = ["incident", "project", "settings"]  # the fixtures this module borrows


def test_a_restore_killed_after_the_parent_is_loaded_leaves_nothing_and_a_rerun_finishes(
    project: Path, database_url: str, incident: tuple[str, Any]
) -> None:
    incident_id, before = incident
    earlier = state(database_url)
    command = ["restore", incident_id, "--yes", "--database-url", database_url]
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE events IN SHARE MODE")
        with running(command, project) as process:
            # markets is loaded; the COPY into events waits behind the blocker (SHARE mode:
            # events can still be counted, so the checks before the COPY pass)
            backend(database_url, "wait_event_type = 'Lock' AND query LIKE 'COPY%events%'")
            kill_9(process)
        blocker.rollback()
    no_backout_sessions(database_url)

    assert state(database_url) == earlier

    done = subprocess.run(
        [sys.executable, "-m", "backout", *command],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert state(database_url)["rows"] == before
