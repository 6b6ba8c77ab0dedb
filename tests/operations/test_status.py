"""``backout status`` against a real PostgreSQL: pending, missing, modified with its commits; read-
only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings
from backout.database.connection import DatabaseError, Target
from backout.operations.apply import apply
from backout.operations.status import State, status
from tests.helpers import git_commit
from tests.sample_project import ME, rows, states


def test_status_before_anything_is_applied_is_all_pending_and_creates_nothing(
    settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    assert set(states(settings, target).values()) == {"pending"}
    assert rows(conn, "SELECT to_regclass('schema_migrations')") == [(None,)]


def test_a_missing_file_is_reported(project: Path, settings: Settings, target: Target) -> None:
    apply(settings, target, ME)
    (project / "migrations/006_add_jobs_priority.sql").unlink()

    assert states(settings, target)["006_add_jobs_priority"] == "missing"


def test_status_lists_the_commits_that_changed_an_applied_file(
    project: Path, settings: Settings, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    before = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    git_commit(project, {"backout.toml": (project / "backout.toml").read_text()}, "init", at=before)
    apply(settings, target, ME, to="002")
    path = "migrations/002_create_core_schema.sql"
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    git_commit(project, {path: (project / path).read_text() + "-- tweak\n"}, "Tweak 002", at=later)

    (modified,) = [s for s in status(settings, target) if s.state is State.MODIFIED]

    assert modified.name == "002_create_core_schema"
    assert [(c.author, c.summary) for c in modified.changes] == [("Ada Lovelace", "Tweak 002")]


def test_an_unreachable_database_is_one_line_without_the_password(settings: Settings) -> None:
    target = Target("postgresql://ada:s3cret@127.0.0.1:1/nope")

    with pytest.raises(DatabaseError) as caught:
        status(settings, target)

    assert "s3cret" not in str(caught.value)
    assert str(caught.value).startswith("cannot connect to postgresql://ada:***@127.0.0.1:1/nope")
