"""A diesel migrations folder against a real PostgreSQL server: ``apply`` runs each ``up.sql``
and never a ``down.sql``, ``rollback`` and ``emergency`` run the ``down.sql``; a migration whose
``metadata.toml`` says ``run_in_transaction = false`` runs statement by statement, journaled."""

from __future__ import annotations

from pathlib import Path

import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.errors import MalformedMigrationError
from backout.operations import emergency as procedure
from backout.operations.apply import apply
from backout.operations.rollback import rollback
from tests.operations.paired_formats import (
    FIXTURES,
    history,
    make_project,
    objects,
    on_the_command_line,
    rows,
    sha256,
    text_sha256,
)
from tests.runner import run
from tests.sample_project import ME

DIESEL = FIXTURES / "directory" / "diesel"
SETUP, USERS = "00000000000000_initial_setup", "2024-01-15-093000_create_users"
EMAIL, POSTS = "2024-01-16-101500_add_users_email_index", "2024-02-01-120000_create_posts"
VERSIONS = ["00000000000000", "20240115093000", "20240116101500", "20240201120000"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path, "directory/diesel", config='format = "directory"\n')


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project, environ={})


@pytest.fixture
def applied(settings: Settings, database_url: str) -> Target:
    target = Target(database_url)
    apply(settings, target, ME)
    return target


def test_apply_runs_every_up_sql_and_no_down_sql(applied: Target, database_url: str) -> None:
    made = objects(database_url)

    assert {
        ("function", "track_updated_at"),
        ("function", "touch_updated_at"),
        ("table", "users"),
        ("trigger", "set_updated_at"),  # made by SELECT track_updated_at('users')
        ("column", "users.email"),
        ("index", "users_email_idx"),
        ("table", "posts"),
    } <= made
    assert history(database_url) == [
        (
            version,
            name,
            sha256(DIESEL / name / "up.sql"),
            text_sha256(DIESEL / name / "down.sql"),
        )
        for version, name in zip(VERSIONS, (SETUP, USERS, EMAIL, POSTS), strict=True)
    ]


def test_a_no_transaction_migration_runs_statement_by_statement_journaled(
    applied: Target, database_url: str
) -> None:
    journaled = rows(
        database_url,
        "SELECT migration, details->'journal'->'finished' FROM backout_audit_event "
        "WHERE action = 'apply' AND details ? 'journal' ORDER BY id",
    )

    assert journaled == [(EMAIL, [0, 1])]  # its ALTER TABLE too, not only the index


def test_rollback_runs_down_sql_and_removes_the_history_row(
    settings: Settings, applied: Target, database_url: str
) -> None:
    rollback(settings, applied, ME, "create_posts")
    assert ("table", "posts") not in objects(database_url)

    rollback(settings, applied, ME, f"migrations/{EMAIL}")  # the directory's path
    made = objects(database_url)
    assert ("index", "users_email_idx") not in made
    assert ("column", "users.email") not in made
    assert [h[0] for h in history(database_url)] == VERSIONS[:2]
    journaled = "SELECT details->'journal'->'finished' FROM backout_audit_event "
    journaled += f"WHERE action = 'rollback' AND migration = '{EMAIL}'"
    assert rows(database_url, journaled) == [([0, 1],)]  # down.sql too: no transaction


def test_the_emergency_runs_down_sql(
    settings: Settings, applied: Target, database_url: str
) -> None:
    request = procedure.Request(reference="20240201120000", reason="posts broken", rehearse=False)

    result = procedure.emergency(settings, applied, ME, request)

    assert result.rolled_back_at is not None
    assert ("table", "posts") not in objects(database_url)
    assert [h[0] for h in history(database_url)] == VERSIONS[:3]


def test_on_the_command_line_apply_rollback_and_emergency(
    project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_the_command_line(project, database_url, monkeypatch)

    assert run("apply", "--yes").exit_code == 0
    result = run("rollback", f"migrations/{POSTS}/down.sql", "--yes")
    assert result.exit_code == 0, result.stderr
    assert ("table", "posts") not in objects(database_url)
    result = run("emergency", EMAIL, "--reason", "slow writes", "--yes", "--no-rehearsal")
    assert result.exit_code == 0, result.stderr
    assert ("index", "users_email_idx") not in objects(database_url)
    assert [h[0] for h in history(database_url)] == VERSIONS[:2]


def test_a_directory_without_up_sql_makes_apply_refuse_before_anything_runs(
    project: Path, settings: Settings, database_url: str
) -> None:
    lost = project / "migrations" / "2024-03-01-000000_create_tags"
    lost.mkdir()
    (lost / "down.sql").write_text("DROP TABLE tags;\n")

    with pytest.raises(MalformedMigrationError) as refused:
        apply(settings, Target(database_url), ME)

    assert refused.value.path == lost
    assert "holds SQL files but no up.sql" in str(refused.value)
    assert history(database_url) == []
    assert objects(database_url) == set()
