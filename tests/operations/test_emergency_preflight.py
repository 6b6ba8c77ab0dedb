"""Pre-flight: what would fail after the emergency's rollback commits is refused before it, with
nothing changed; what fails after the commit anyway is a warning, never an error."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.errors import ExitCode, RefusedError
from backout.operations import emergency as procedure
from tests.incident_project import ENGINEER, applied, committed_project

ME = ENGINEER
PRIORITY = "SELECT count(*) FROM information_schema.columns WHERE column_name = 'priority'"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return committed_project(tmp_path)


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project, environ={})


@pytest.fixture
def target(database_url: str, settings: Settings) -> Target:
    return applied(settings, database_url)


def scalar(url: str, query: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
        return row[0] if row else None


def emergency(settings: Settings, target: Target, **kw: Any) -> procedure.Result:
    request = procedure.Request("006", "claims stalled", rehearse=False, **kw)
    return procedure.emergency(settings, target, ME, request)


def assert_nothing_changed(project: Path, target: Target) -> None:
    assert scalar(target.url, PRIORITY) == 1
    assert scalar(target.url, "SELECT count(*) FROM schema_migrations WHERE version = '006'") == 1
    assert scalar(target.url, "SELECT to_regclass('backout_audit_event') IS NOT NULL")
    assert not list(project.glob("ops/postmortems/INC-*"))
    assert not (project / ".backout").exists()
    assert not list(project.glob("migrations/007_*"))


def test_a_stub_template_with_an_undefined_variable_is_refused_before_anything_runs(
    project: Path, settings: Settings, target: Target
) -> None:
    (project / "templates").mkdir()
    (project / "templates/fix_forward.sql.j2").write_text("-- Migration: {{ no_such_thing }}\n")

    with pytest.raises(RefusedError, match="pre-flight: a template does not render") as refused:
        emergency(settings, target)

    assert refused.value.exit_code == ExitCode.REFUSED
    assert_nothing_changed(project, target)


def test_a_postmortems_folder_that_is_a_file_is_refused_before_anything_runs(
    project: Path, settings: Settings, target: Target
) -> None:
    (project / "ops").mkdir()
    (project / "ops/postmortems").write_text("not a folder\n")

    with pytest.raises(RefusedError, match="ops/postmortems is a file, not a folder"):
        emergency(settings, target)

    assert scalar(target.url, PRIORITY) == 1
    assert (project / "ops/postmortems").read_text() == "not a folder\n"


def test_a_backups_folder_that_cannot_be_made_is_refused_before_anything_runs(
    project: Path, settings: Settings, target: Target
) -> None:
    (project / ".backout").write_text("a file where the backups folder goes\n")

    with pytest.raises(RefusedError, match="cannot be made"):
        emergency(settings, target)

    assert scalar(target.url, PRIORITY) == 1
    assert not list(project.glob("ops/postmortems/INC-*"))


def test_a_git_repository_broken_after_the_commit_is_a_warning_and_the_incident_completes(
    project: Path, settings: Settings, target: Target
) -> None:
    def break_git_after_the_rollback(line: str) -> None:
        if line.startswith("backup:"):  # the last report before the rollback commits
            shutil.rmtree(project / ".git" / "objects")

    request = procedure.Request("006", "claims stalled", rehearse=False)
    result = procedure.emergency(settings, target, ME, request, report=break_git_after_the_rollback)

    assert scalar(target.url, PRIORITY) == 0
    assert result.git is None
    assert result.warnings == [
        "not a git repository: the postmortem and the stub are not committed"
    ]
    assert result.review_due is not None
    assert result.fix_forward is not None
    assert result.fix_forward.is_file()
