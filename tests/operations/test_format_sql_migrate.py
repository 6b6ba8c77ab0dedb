"""sql-migrate migrations against a real PostgreSQL: ``apply`` runs the up sections only,
``rollback`` and ``emergency`` the down section. The database is checked, not what backout
printed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
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

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats" / "sql-migrate"
TRACE = """-- +migrate Down
CREATE TABLE down_ran (id int);
DROP TABLE traced;

-- +migrate Up
CREATE TABLE traced (id int);
"""
"""A migration whose down section (written first, as sql-migrate allows) would leave a table
behind if it ever ran."""


def project_with(root: Path, fixtures: str) -> Path:
    """The fixture folder and the trace migration; the format is detected from the markers."""
    return committed(root, FIXTURES / fixtures, {"99_trace.sql": TRACE}, "")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(project_with(tmp_path, "migrations"), environ={})


def test_apply_runs_the_up_sections_only(settings: Settings, database_url: str) -> None:
    apply(settings, Target(database_url), ME)

    url = database_url
    assert columns(url, "authors") == ["id", "name", "bio", "email"]
    assert columns(url, "articles") == ["id", "author_id", "title", "body", "search"]
    assert one(url, "SELECT to_regproc('articles_search_refresh') IS NOT NULL")
    assert one(url, "SELECT count(*) FROM pg_trigger WHERE tgname = 'articles_search'") == 1
    assert one(url, "SELECT to_regclass('articles_title') IS NOT NULL")
    assert one(url, "SELECT to_regclass('traced') IS NOT NULL")
    assert one(url, "SELECT to_regclass('down_ran') IS NULL")  # no down section ever ran
    with psycopg.connect(url, autocommit=True) as conn:  # the trigger works: its body is whole
        conn.execute("INSERT INTO authors (name) VALUES ('Ada')")
        conn.execute("INSERT INTO articles (author_id, title, body) VALUES (1, 'Engines', 'x')")
    assert one(url, "SELECT search::text FROM articles") == "'engines':1 'x':2"


def test_apply_records_each_file_in_the_history_in_version_order(
    settings: Settings, database_url: str
) -> None:
    apply(settings, Target(database_url), ME)

    entries = project_catalog(settings).entries
    history = all_rows(
        database_url,
        "SELECT version, checksum, rollback_checksum FROM schema_migrations ORDER BY version::int",
    )
    assert [v for v, *_ in history] == ["1", "2", "3", "10", "11", "12", "99"]
    for (version, checksum, rollback_checksum), entry in zip(history, entries, strict=True):
        m = entry.read()
        assert (version, checksum) == (m.version, hashlib.sha256(m.path.read_bytes()).hexdigest())
        assert rollback_checksum == m.rollback.checksum


def test_rollback_runs_the_down_section_and_removes_the_history_row(
    settings: Settings, database_url: str
) -> None:
    target = Target(database_url)
    apply(settings, target, ME)

    rollback(settings, target, ME, "99")
    rollback(settings, target, ME, "12")
    rollback(settings, target, ME, "10")  # notransaction: DROP INDEX CONCURRENTLY

    assert one(database_url, "SELECT to_regclass('traced') IS NULL")
    assert one(database_url, "SELECT to_regclass('down_ran') IS NOT NULL")  # it runs now
    assert "email" not in columns(database_url, "authors")
    assert one(database_url, "SELECT to_regclass('articles_title') IS NULL")
    versions = [v for (v,) in all_rows(database_url, "SELECT version FROM schema_migrations")]
    assert sorted(versions, key=int) == ["1", "2", "3", "11"]


def test_a_down_section_with_only_a_comment_is_refused_as_no_rollback(
    settings: Settings, database_url: str
) -> None:
    target = Target(database_url)
    apply(settings, target, ME)

    with pytest.raises(RefusedError, match="11_authors_bio documents no rollback"):
        rollback(settings, target, ME, "11")

    assert "bio" in columns(database_url, "authors")


def test_emergency_runs_the_down_section(settings: Settings, database_url: str) -> None:
    target = Target(database_url)
    apply(settings, target, ME)

    request = procedure.Request(reference="3", reason="search trigger is slow", rehearse=False)
    procedure.emergency(settings, target, ME, request)

    assert "search" not in columns(database_url, "articles")
    assert one(database_url, "SELECT to_regproc('articles_search_refresh') IS NULL")
    assert one(database_url, "SELECT count(*) FROM schema_migrations WHERE version = '3'") == 0
    assert all_rows(
        database_url, "SELECT action, outcome FROM backout_audit_event ORDER BY id DESC LIMIT 1"
    ) == [("emergency", "success")]


def test_markers_inside_strings_and_bodies_are_applied_as_data(
    tmp_path: Path, database_url: str
) -> None:
    settings = load_settings(project_with(tmp_path, "traps"), environ={})
    target = Target(database_url)

    apply(settings, target, ME)

    assert one(database_url, "SELECT body FROM snippets") == (
        "Write the undo after\n-- +migrate Down\nin each file."
    )
    assert one(database_url, "SELECT snippet_template()") == "-- +migrate Up\nDROP TABLE x;"
    rollback(settings, target, ME, "2")
    assert one(database_url, "SELECT to_regproc('snippet_template') IS NULL")
