"""goose migrations against a real PostgreSQL: ``apply`` runs the up sections only, ``rollback``
and ``emergency`` the down section. The database is checked, not what backout printed."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.errors import RefusedError
from backout.migrations.catalog import project_catalog
from backout.operations import emergency as procedure
from backout.operations.apply import apply
from backout.operations.rollback import rollback
from tests.helpers import git_commit
from tests.incident_project import ENGINEER as ME

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats" / "goose"
FOLDER = "db/migrations"
TRACE = """-- +goose Up
CREATE TABLE traced (id int);

-- +goose Down
CREATE TABLE down_ran (id int);
DROP TABLE traced;
"""
"""A migration whose down section would leave a table behind if it ever ran."""


def committed(root: Path, source: Path, extra: dict[str, str], config: str) -> Path:
    """The migrations of ``source`` (and ``extra`` files) in ``db/migrations`` with a
    ``backout.toml`` holding ``config``, committed in a git repository at ``root``."""
    shutil.copytree(source, root / FOLDER)
    for name, text in extra.items():
        (root / FOLDER / name).write_text(text)
    (root / "backout.toml").write_text(f'migrations = ["{FOLDER}"]\n{config}')
    files = {  # as bytes decoded, so the CRLF files stay CRLF
        str(p.relative_to(root)): p.read_bytes().decode() for p in root.rglob("*") if p.is_file()
    }
    git_commit(root, files, "Add the migrations", at="2026-11-20T10:00:00+00:00")
    return root


def project_with(root: Path, fixtures: str) -> Path:
    """The goose fixture folder and the trace migration, configured as goose."""
    trace = {"20991231000000_trace.sql": TRACE}
    return committed(root, FIXTURES / fixtures, trace, 'format = "goose"\n')


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(project_with(tmp_path, "migrations"), environ={})


def one(url: str, query: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def all_rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query).fetchall()


def columns(url: str, table: str) -> list[str]:
    return [
        name
        for (name,) in all_rows(
            url,
            "SELECT column_name FROM information_schema.columns "
            f"WHERE table_name = '{table}' ORDER BY ordinal_position",
        )
    ]


def test_apply_runs_the_up_sections_only(settings: Settings, database_url: str) -> None:
    apply(settings, Target(database_url), ME)

    url = database_url
    assert columns(url, "accounts") == [
        "id",
        "email",
        "created_at",
        "updated_at",
        "nickname",
        "plan",
    ]
    assert one(url, "SELECT to_regproc('touch_updated_at') IS NOT NULL")
    assert one(url, "SELECT count(*) FROM pg_trigger WHERE tgname = 'accounts_touch'") == 1
    assert one(url, "SELECT to_regclass('accounts_email_lower') IS NOT NULL")
    assert all_rows(url, "SELECT code FROM plans ORDER BY code") == [("basic",), ("team",)]
    assert all_rows(url, "SELECT title FROM reports") == [("Revenue in $USD",)]
    assert one(url, "SELECT to_regclass('traced') IS NOT NULL")
    assert one(url, "SELECT to_regclass('down_ran') IS NULL")  # no down section ever ran


def test_apply_records_each_file_and_its_down_section_in_the_history(
    settings: Settings, database_url: str
) -> None:
    apply(settings, Target(database_url), ME)

    catalog = project_catalog(settings)
    expected = []
    for entry in catalog.entries:
        m = entry.read()
        expected.append(
            (
                m.version,
                m.name,
                hashlib.sha256(m.path.read_bytes()).hexdigest(),
                m.rollback.checksum,
            )
        )
    history = all_rows(
        database_url,
        "SELECT version, name, checksum, rollback_checksum FROM schema_migrations ORDER BY version",
    )
    assert sorted(history) == sorted(expected)
    assert [v for v, *_ in expected][-2:] == ["20240115093000", "20991231000000"]
    audit = all_rows(database_url, "SELECT action, outcome FROM backout_audit_event")
    assert audit == [("apply", "success")] * len(expected)


def test_rollback_runs_the_down_section_and_removes_the_history_row(
    settings: Settings, database_url: str
) -> None:
    target = Target(database_url)
    apply(settings, target, ME)

    rollback(settings, target, ME, "20991231000000")
    rollback(settings, target, ME, "20240115093000")

    assert one(database_url, "SELECT to_regclass('traced') IS NULL")
    assert one(database_url, "SELECT to_regclass('down_ran') IS NOT NULL")  # it runs now
    assert "plan" not in columns(database_url, "accounts")
    versions = [v for (v,) in all_rows(database_url, "SELECT version FROM schema_migrations")]
    assert "20240115093000" not in versions
    assert len(versions) == 6
    last = all_rows(
        database_url, "SELECT action, outcome FROM backout_audit_event ORDER BY id DESC LIMIT 2"
    )
    assert last == [("rollback", "success"), ("rollback", "success")]


def test_a_no_transaction_file_rolls_back_outside_a_transaction(
    settings: Settings, database_url: str
) -> None:
    target = Target(database_url)
    apply(settings, target, ME)

    rollback(settings, target, ME, "00003")  # DROP INDEX CONCURRENTLY refuses a transaction

    assert one(database_url, "SELECT to_regclass('accounts_email_lower') IS NULL")
    assert one(database_url, "SELECT count(*) FROM schema_migrations WHERE version = '00003'") == 0


def test_an_empty_down_section_is_refused_as_no_rollback(
    settings: Settings, database_url: str
) -> None:
    target = Target(database_url)
    apply(settings, target, ME)

    with pytest.raises(RefusedError, match="00005_add_accounts_nickname documents no rollback"):
        rollback(settings, target, ME, "00005")

    assert "nickname" in columns(database_url, "accounts")


def test_emergency_runs_the_down_section(settings: Settings, database_url: str) -> None:
    target = Target(database_url)
    apply(settings, target, ME)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO accounts (email, plan) VALUES ('ada@example.com', 'team')")

    request = procedure.Request(
        reference="20240115093000", reason="plan lookups time out", rehearse=False
    )
    result = procedure.emergency(settings, target, ME, request)

    assert "plan" not in columns(database_url, "accounts")
    assert one(database_url, "SELECT count(*) FROM accounts") == 1
    assert (
        one(database_url, "SELECT count(*) FROM schema_migrations WHERE version = '20240115093000'")
        == 0
    )
    assert all_rows(
        database_url, "SELECT action, outcome FROM backout_audit_event ORDER BY id DESC LIMIT 1"
    ) == [("emergency", "success")]
    assert result.postmortem is not None
    assert result.postmortem.is_file()
    assert [s.sql for s in result.statements] == ["ALTER TABLE accounts DROP COLUMN plan"]


def test_markers_inside_strings_and_bodies_are_applied_as_data(
    tmp_path: Path, database_url: str
) -> None:
    settings = load_settings(project_with(tmp_path, "traps"), environ={})
    target = Target(database_url)

    apply(settings, target, ME)

    body = one(database_url, "SELECT body FROM release_notes")
    assert body == "How to write a goose file:\n-- +goose Down\ngoes before the SQL that undoes it."
    template = one(database_url, "SELECT release_note_template()")
    assert template == "-- +goose Up\nDROP TABLE x;"
    rollback(settings, target, ME, "00002")
    assert one(database_url, "SELECT to_regproc('release_note_template') IS NULL")
    assert one(database_url, "SELECT to_regclass('release_notes') IS NOT NULL")
