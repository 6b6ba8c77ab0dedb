"""node-pg-migrate SQL migrations against a real PostgreSQL: ``apply`` runs the up sections
only, ``rollback`` and ``emergency`` the down section, and a marker inside a string or a
``$$`` body (node-pg-migrate's known trap) never splits a file. The database is checked, not
what backout printed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.errors import RefusedError
from backout.migrations.catalog import project_catalog
from backout.operations import emergency as procedure
from backout.operations.apply import apply
from backout.operations.rollback import rollback
from tests.incident_project import ENGINEER as ME
from tests.operations.test_format_goose import all_rows, columns, committed, one

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats" / "node-pg-migrate"
TRACE = """-- Up Migration
CREATE TABLE traced (id int);

-- Down Migration
CREATE TABLE down_ran (id int);
DROP TABLE traced;
"""
"""A migration whose down section would leave a table behind if it ever ran."""


def project_with(root: Path, fixtures: str) -> Path:
    trace = {"20991231000000000_trace.sql": TRACE}
    return committed(root, FIXTURES / fixtures, trace, 'format = "node-pg-migrate"\n')


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(project_with(tmp_path, "migrations"), environ={})


def test_apply_runs_the_up_sections_only(settings: Settings, database_url: str) -> None:
    apply(settings, Target(database_url), ME)

    url = database_url
    assert columns(url, "users") == ["id", "handle", "email"]
    assert columns(url, "posts") == ["id", "user_id", "title"]
    assert all_rows(url, "SELECT handle, email FROM users") == [("admin", "admin@example.com")]
    assert one(url, "SELECT post_count(1)") == 1
    assert one(url, "SELECT to_regclass('traced') IS NOT NULL")
    assert one(url, "SELECT to_regclass('down_ran') IS NULL")  # no down section ever ran


def test_apply_records_each_file_in_the_history(settings: Settings, database_url: str) -> None:
    apply(settings, Target(database_url), ME)

    expected = sorted(
        (m.version, hashlib.sha256(m.path.read_bytes()).hexdigest(), m.rollback.checksum)
        for m in (e.read() for e in project_catalog(settings).entries)
    )
    history = all_rows(
        database_url, "SELECT version, checksum, rollback_checksum FROM schema_migrations"
    )
    assert sorted(history) == expected
    assert len(expected) == 6


def test_rollback_runs_the_down_section_and_removes_the_history_row(
    settings: Settings, database_url: str
) -> None:
    target = Target(database_url)
    apply(settings, target, ME)

    rollback(settings, target, ME, "20991231000000000")
    rollback(settings, target, ME, "20240601120000000")  # its down section comes first

    assert one(database_url, "SELECT to_regclass('traced') IS NULL")
    assert one(database_url, "SELECT to_regclass('down_ran') IS NOT NULL")  # it runs now
    assert "email" not in columns(database_url, "users")
    assert one(database_url, "SELECT count(*) FROM schema_migrations") == 4


def test_a_file_without_a_down_marker_is_refused_as_no_rollback(
    settings: Settings, database_url: str
) -> None:
    target = Target(database_url)
    apply(settings, target, ME)

    with pytest.raises(RefusedError, match="1715000300000_seed-admin documents no rollback"):
        rollback(settings, target, ME, "1715000300000")

    assert one(database_url, "SELECT count(*) FROM users") == 1


def test_emergency_runs_the_down_section(settings: Settings, database_url: str) -> None:
    target = Target(database_url)
    apply(settings, target, ME)

    request = procedure.Request(
        reference="1715000200000", reason="post counts are slow", rehearse=False
    )
    procedure.emergency(settings, target, ME, request)

    assert one(database_url, "SELECT to_regproc('post_count') IS NULL")
    assert (
        one(database_url, "SELECT count(*) FROM schema_migrations WHERE version = '1715000200000'")
        == 0
    )
    assert all_rows(
        database_url, "SELECT action, outcome FROM backout_audit_event ORDER BY id DESC LIMIT 1"
    ) == [("emergency", "success")]


def test_markers_inside_strings_and_bodies_are_applied_as_data(
    tmp_path: Path, database_url: str
) -> None:
    settings = load_settings(project_with(tmp_path, "traps"), environ={})
    target = Target(database_url)

    apply(settings, target, ME)

    assert one(database_url, "SELECT body FROM docs") == (
        "A migration file has two parts:\n-- Down Migration\nundoes what the up part did."
    )
    assert one(database_url, "SELECT docs_template()") == "-- Up Migration\nDROP TABLE x;"
    rollback(settings, target, ME, "1715000000100")
    assert one(database_url, "SELECT to_regproc('docs_template') IS NULL")
    assert one(database_url, "SELECT to_regclass('docs') IS NOT NULL")
