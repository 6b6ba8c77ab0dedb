"""kill -9 while the emergency commits the incident branch, the last step: the working tree's
postmortem still says "record in git" is pending, and the same command again finishes it, with
the branch holding exactly what the working tree holds.

git is held at ``update-ref`` (before it, or just after it) by a ``git`` placed first on PATH
that writes its pid to a marker file and waits; the test waits for the marker, never sleeps.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from backout.config import load_settings
from backout.postmortems.front_matter import read_front_matter
from tests.faults.activity import kill_9, no_backout_sessions, running
from tests.incident_project import applied, committed_project

COMMAND = ["emergency", "006", "--reason", "claims stalled", "--yes", "--no-rehearsal"]
PRIORITY = "SELECT count(*) FROM information_schema.columns WHERE column_name = 'priority'"
WRAPPER = """#!/bin/sh
case " $* " in
  *" update-ref "*)
    if [ "$HOLD" = after ]; then "$REAL_GIT" "$@" || exit $?; fi
    echo $$ > "$MARKER"
    exec sleep 120 ;;
esac
exec "$REAL_GIT" "$@"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    root = committed_project(tmp_path / "repo")
    applied(load_settings(root, environ={}), database_url)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS"):
        monkeypatch.delenv(name, raising=False)
    return root


def git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=project, check=True, capture_output=True, text=True
    ).stdout


def held_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hold: str) -> Path:
    """A ``git`` first on PATH that stops at ``update-ref``; the marker file it will write."""
    real = shutil.which("git")
    assert real is not None
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "git").write_text(WRAPPER)
    (folder / "git").chmod(0o755)
    marker = tmp_path / "git-held"
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("REAL_GIT", real)
    monkeypatch.setenv("HOLD", hold)
    monkeypatch.setenv("MARKER", str(marker))
    return marker


def wait_for(marker: Path, patience: float = 60.0) -> int:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text().strip():
            return int(marker.read_text())
        time.sleep(0.05)
    raise AssertionError(f"git was never held at update-ref ({marker})")


def postmortem(project: Path) -> Path:
    (found,) = (project / "ops" / "postmortems").glob("INC-*.md")
    return found


def one(url: str, query: str) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize("hold", ["before", "after"])
def test_killed_while_committing_the_branch_the_rerun_finishes_it(
    hold: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    with monkeypatch.context() as held:
        marker = held_git(tmp_path, held, hold)
        with running(COMMAND, project) as process:
            waiting = wait_for(marker)
            kill_9(process)
            os.kill(waiting, signal.SIGKILL)
    no_backout_sessions(database_url)

    assert one(database_url, PRIORITY) == 0  # the rollback had committed
    front = read_front_matter(postmortem(project).read_text())
    assert front["steps_pending"] == ["record in git"]
    branches = git(project, "branch", "--list", "incident/*").split()
    assert branches == ([] if hold == "before" else [f"incident/{front['id']}"])

    again = subprocess.run(
        [sys.executable, "-m", "backout", *COMMAND],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert again.returncode == 0, again.stderr
    text = postmortem(project).read_text()
    assert not read_front_matter(text).get("steps_pending")
    name = postmortem(project).relative_to(project).as_posix()
    assert git(project, "show", f"incident/{front['id']}:{name}") == text
    assert one(database_url, PRIORITY) == 0
