"""A golang-migrate folder against a real PostgreSQL server: ``apply`` runs the up files and
never a down file, ``rollback`` and ``emergency`` run the down file; checked in the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.errors import MalformedMigrationError
from backout.migrations.lint import lint_project
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

BASIC = FIXTURES / "golang-migrate" / "basic"
NAMES = [
    "000001_create_users",
    "000002_create_orders",
    "000003_add_orders_status_index",
    "000004_orders_audit",
    "000005_seed_users",
]
AUDIT = {
    ("table", "order_events"),
    ("function", "record_order_event"),
    ("trigger", "orders_status_changed"),
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path, "golang-migrate/basic")  # detected, not configured


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project, environ={})


@pytest.fixture
def applied(settings: Settings, database_url: str) -> Target:
    target = Target(database_url)
    apply(settings, target, ME)
    return target


def test_apply_runs_every_up_file_and_no_down_file(applied: Target, database_url: str) -> None:
    made = objects(database_url)

    assert {
        ("table", "users"),
        ("table", "orders"),
        ("index", "users_email_key"),
        ("index", "orders_user_id_idx"),
        ("index", "orders_status_idx"),  # CREATE INDEX CONCURRENTLY, on its own
        *AUDIT,
    } <= made
    # the down files drop these and delete the seeded users: none of that happened
    assert rows(database_url, "SELECT email FROM users ORDER BY id") == [
        ("ada@example.com",),
        ("grace@example.com",),
    ]
    assert history(database_url) == [
        (
            name.split("_")[0],
            name,
            sha256(BASIC / f"{name}.up.sql"),
            text_sha256(BASIC / f"{name}.down.sql"),
        )
        for name in NAMES
    ]


def test_rollback_runs_the_down_file_and_removes_the_history_row(
    settings: Settings, applied: Target, database_url: str
) -> None:
    rollback(settings, applied, ME, "000005")
    assert rows(database_url, "SELECT count(*) FROM users") == [(0,)]

    rollback(settings, applied, ME, "000004_orders_audit")
    assert objects(database_url) & AUDIT == set()

    rollback(settings, applied, ME, "3")  # the version without its zeros
    assert ("index", "orders_status_idx") not in objects(database_url)
    assert [h[0] for h in history(database_url)] == ["000001", "000002"]


def test_the_emergency_runs_the_down_file(
    settings: Settings, applied: Target, database_url: str
) -> None:
    request = procedure.Request(reference="000004", reason="trigger storm", rehearse=False)

    result = procedure.emergency(settings, applied, ME, request)

    assert result.rolled_back_at is not None
    assert objects(database_url) & AUDIT == set()
    assert [h[0] for h in history(database_url)] == ["000001", "000002", "000003", "000005"]
    # the fix-forward stub is this format's pair of files: lint says it is unfinished and its
    # down file empty, and apply refuses it until it is written
    assert result.fix_forward is not None
    stub = result.fix_forward
    assert stub.name == "000006_fix_orders_audit.up.sql"
    assert stub.with_name("000006_fix_orders_audit.down.sql").is_file()
    rules = {f.rule for f in lint_project(settings).findings if f.file == stub}
    assert {"unfinished-stub", "rollback-missing"} <= rules


def test_on_the_command_line_apply_rollback_emergency_and_status(
    project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_the_command_line(project, database_url, monkeypatch)

    assert run("apply", "--yes").exit_code == 0
    assert run("status", "--json").stdout.count('"applied"') == 5
    result = run("rollback", "migrations/000005_seed_users.down.sql", "--yes")
    assert result.exit_code == 0, result.stderr
    assert rows(database_url, "SELECT count(*) FROM users") == [(0,)]
    result = run("emergency", "000004", "--reason", "trigger storm", "--yes", "--no-rehearsal")
    assert result.exit_code == 0, result.stderr
    assert objects(database_url) & AUDIT == set()
    assert [h[0] for h in history(database_url)] == ["000001", "000002", "000003"]


def test_a_stray_file_makes_apply_refuse_before_anything_runs(
    project: Path, settings: Settings, database_url: str
) -> None:
    (project / "migrations" / "seed.sql").write_text("INSERT INTO users (email) VALUES ('x');\n")

    with pytest.raises(MalformedMigrationError) as refused:
        apply(settings, Target(database_url), ME)

    assert refused.value.path == project / "migrations" / "seed.sql"
    assert "name-format: seed.sql is not a golang-migrate file name" in str(refused.value)
    assert history(database_url) == []
    assert ("table", "users") not in objects(database_url)


def test_a_stray_never_stops_a_rollback(
    project: Path, settings: Settings, applied: Target, database_url: str
) -> None:
    (project / "migrations" / "9_lost.down.sql").write_text("DROP TABLE users;\n")

    rollback(settings, applied, ME, "000005")

    assert rows(database_url, "SELECT count(*) FROM users") == [(0,)]
    assert ("table", "users") in objects(database_url)


def test_another_tools_marker_in_an_up_file_is_refused_on_the_command_line(
    project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "migrations" / "000006_notes.up.sql").write_text(
        "-- migrate:up\nCREATE TABLE notes (id int);\n-- migrate:down\nDROP TABLE notes;\n"
    )
    (project / "migrations" / "000006_notes.down.sql").write_text("DROP TABLE notes;\n")
    on_the_command_line(project, database_url, monkeypatch)

    result = run("apply", "--yes")

    assert result.exit_code == 2
    assert "000006_notes.up.sql:1: format-mismatch: `-- migrate:up` is a dbmate marker" in (
        result.stderr
    )
    assert 'set format = "dbmate"' in result.stderr
    assert history(database_url) == []
    assert objects(database_url) == set()
