"""``backout emergency`` killed (SIGKILL) at each step, then run again: the database, the
history, the audit trail, the backup and the incident's files are consistent after the kill,
and the re-run finishes the same incident.

backout runs as its own process; each test holds it at a known point with a session of its own
(the migration lock, a table lock, an advisory lock a smoke check waits for), waits until the
server shows backout waiting there, and kills it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.database.lock import LOCK_KEY
from backout.errors import ExitCode
from backout.postmortems.front_matter import read_front_matter
from tests.faults.activity import backend, kill_9, no_backout_sessions, running
from tests.incident_project import applied, committed_project
from tests.runner import run as cli

HELD = 4242
SMOKE = f"""
[[smoke_checks]]
name = "the workers can claim jobs"
sql = "SELECT pg_advisory_xact_lock_shared({HELD}) IS NOT NULL"
"""
PRIORITY = "SELECT count(*) FROM information_schema.columns WHERE column_name = 'priority'"
EMERGENCIES = "SELECT count(*) FROM backout_audit_event WHERE action = 'emergency'"
SUCCESSES = EMERGENCIES + " AND outcome = 'success'"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return committed_project(tmp_path, SMOKE)


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project, environ={})


@pytest.fixture
def target(database_url: str, settings: Settings) -> Target:
    target = applied(settings, database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO jobs (kind, payload, priority) VALUES ('payout', '{}', 5)")
    return target


def scalar(url: str, query: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
        return row[0] if row else None


@dataclass(frozen=True)
class Hold:
    """Where the test holds backout, and what the server shows while it waits there."""

    step: str
    hold: str
    """SQL run by the test's own session, in a transaction kept open until the kill."""
    waiting: str
    committed: bool
    """Whether backout's rollback has committed when it is killed there."""


HOLDS = [
    Hold(
        "take the migration lock",
        f"SELECT pg_advisory_lock({LOCK_KEY})",
        "query ILIKE '%advisory_lock%'",
        committed=False,
    ),
    Hold(
        "back up",
        "LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE",
        "wait_event_type = 'Lock' AND query NOT ILIKE '%advisory%'",  # reading it to back it up
        committed=False,
    ),
    Hold(
        "roll back",
        "SELECT count(*) FROM jobs",  # ACCESS SHARE: the backup reads, the ALTER waits
        "wait_event_type = 'Lock' AND (query ILIKE '%DROP%' OR query ILIKE '%ALTER%')",
        committed=False,
    ),
    Hold(
        "smoke checks",
        f"SELECT pg_advisory_lock({HELD})",
        f"wait_event_type = 'Lock' AND query LIKE '%{HELD}%'",
        committed=True,
    ),
]


def command(target: Target) -> list[str]:
    return ["emergency", "006", "--reason", "claims stalled", "--yes", "--no-rehearsal",
            "--lock-wait", "60s", "--lock-timeout", "60s",
            "--database-url", target.url]  # fmt: skip


@contextmanager
def held(url: str, statement: str) -> Iterator[None]:
    """``statement`` run in a transaction of the test's own, kept open until the block ends."""
    with psycopg.connect(url) as conn:
        conn.execute(statement)
        yield
        conn.rollback()
        conn.execute("SELECT pg_advisory_unlock_all()")


def finish(project: Path, target: Target) -> None:
    """The same command again, to the end."""
    done = subprocess.run(
        [sys.executable, "-m", "backout", *command(target)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("hold", HOLDS, ids=[h.step for h in HOLDS])
def test_killed_at_a_step_the_database_is_consistent_and_a_rerun_finishes(
    hold: Hold, project: Path, settings: Settings, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    with held(target.url, hold.hold), running(command(target), project) as process:
        backend(target.url, hold.waiting)
        kill_9(process)
    no_backout_sessions(target.url)

    assert scalar(target.url, PRIORITY) == (0 if hold.committed else 1)
    assert scalar(target.url, "SELECT count(*) FROM jobs") == 1
    assert scalar(target.url, SUCCESSES) == (1 if hold.committed else 0)
    (postmortem,) = settings.postmortems.glob("INC-*.md")
    front = read_front_matter(postmortem.read_text())
    assert front["steps_pending"][0] == hold.step
    assert front["rolled_back_at"] is None
    monkeypatch.chdir(project)
    checked = cli("postmortems", "check")
    assert checked.exit_code == ExitCode.PROBLEMS
    assert "pm-incomplete" in checked.stdout

    finish(project, target)

    assert scalar(target.url, PRIORITY) == 0
    assert scalar(target.url, "SELECT count(*) FROM jobs") == 1
    assert scalar(target.url, SUCCESSES) == 1
    assert scalar(target.url, "SELECT count(*) FROM schema_migrations WHERE version = '006'") == 0
    assert list(settings.postmortems.glob("INC-*.md")) == [postmortem]
    front = read_front_matter(postmortem.read_text())
    assert "steps_pending" not in front
    assert front["rolled_back_at"]
    assert front["review_due"]
    assert front["fix_forward"]
    assert len(list((project / "migrations").glob("007_*.sql"))) == 1
    assert (settings.backups_folder / front["id"] / "manifest.json").is_file()
    assert cli("postmortems", "check").exit_code == ExitCode.OK


def test_a_rerun_backs_up_the_rows_written_after_the_killed_run(
    project: Path, settings: Settings, target: Target
) -> None:
    hold = HOLDS[2]  # killed in the rollback, after its backup
    with held(target.url, hold.hold), running(command(target), project) as process:
        backend(target.url, hold.waiting)
        kill_9(process)
    no_backout_sessions(target.url)
    with psycopg.connect(target.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO jobs (kind, payload, priority)"
            " SELECT 'late', '{}', 1 FROM generate_series(1, 500)"
        )

    finish(project, target)

    (postmortem,) = settings.postmortems.glob("INC-*.md")
    incident = read_front_matter(postmortem.read_text())["id"]
    manifest = json.loads((settings.backups_folder / incident / "manifest.json").read_text())
    assert [item["rows"] for item in manifest["items"]] == [501]
    (earlier,) = settings.backups_folder.glob(f"{incident}.earlier-*")
    kept = json.loads((earlier / "manifest.json").read_text())
    assert [item["rows"] for item in kept["items"]] == [1]
    assert scalar(target.url, "SELECT count(*) FROM jobs") == 501
