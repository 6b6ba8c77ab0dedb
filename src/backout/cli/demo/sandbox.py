"""Where the demo plays: a temporary copy of the sample migrations made the working directory, a
git repository in it, and ``DATABASE_URL`` pointing at the embedded server; all undone after."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, LiteralString

import psycopg

from backout import git
from backout.errors import UsageError

# src/backout/cli/demo/ is four levels below the checkout that holds the sample migrations.
REPOSITORY = Path(__file__).resolve().parents[4]
ENGINEER = ("Dana On-Call", "dana@example.com")
SAMPLE_FILES = (
    "001_create_jobs.sql",
    "002_create_core_schema.sql",
    "003_add_markets_index.sql",
    "004_alter_events_add_impact_score.sql",
    "005_backfill_events_impact_score.sql",
    "006_add_jobs_priority.sql",
)
"""The sample migrations the demo plays: only these, whatever else the folder holds (a
``backout new`` run in the checkout adds a file the demo's story does not expect)."""


def sample_migrations() -> Path:
    """The sample migrations: the checkout's ``migrations/`` (``make demo`` runs from one)."""
    folder = REPOSITORY / "migrations"
    if not all((folder / name).is_file() for name in SAMPLE_FILES):
        raise UsageError(
            f"the sample migrations are not at {folder}",
            hint="run the demo from a checkout of backout: make demo",
        )
    return folder


@contextmanager
def throwaway_project(samples: Path) -> Iterator[Path]:
    """A temporary project holding a copy of the sample files of ``samples``, as the working
    directory."""
    with tempfile.TemporaryDirectory(prefix="backout-demo-") as folder, _inside(Path(folder)):
        project = Path(folder)
        (project / "migrations").mkdir()
        for name in SAMPLE_FILES:
            shutil.copy(samples / name, project / "migrations" / name)
        (project / "backout.toml").write_text('migrations = ["migrations"]\n')
        yield project


@contextmanager
def database_url(url: str) -> Iterator[None]:
    """``DATABASE_URL`` set to the embedded server for the commands the demo runs."""
    before = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        yield
    finally:
        if before is None:
            del os.environ["DATABASE_URL"]
        else:
            os.environ["DATABASE_URL"] = before


@contextmanager
def _inside(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def git_repository(project: Path) -> bool:
    """Make ``project`` a git repository with one commit; ``False`` when git is missing."""
    return git.new_repository(project, ENGINEER, "Add the sample migrations")


def scalar(conn: psycopg.Connection[Any], query: LiteralString) -> Any:
    row = conn.execute(query).fetchone()
    return row[0] if row else None
