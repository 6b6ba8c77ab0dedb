"""backout on a database another tool migrates: status reads the tool's table, a rollback and
an emergency write it the way the tool's own down does, apply stays the tool's job unless the
configuration says otherwise, and a dirty table is explained, never cleared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.errors import RefusedError
from backout.operations import emergency as procedure
from backout.operations.apply import apply
from backout.operations.rollback import rollback
from backout.operations.status import status
from tests.database.histories.tool_tables import GOLANG_MIGRATE, GOOSE, make
from tests.sample_project import FAST, ME, rows

GOOSE_FILES = {
    "00001_create_users.sql": "-- +goose Up\nCREATE TABLE users (id int PRIMARY KEY);\n"
    "-- +goose Down\nDROP TABLE users;\n",
    "00002_add_email.sql": "-- +goose Up\nALTER TABLE users ADD COLUMN email text;\n"
    "-- +goose Down\nALTER TABLE users DROP COLUMN email;\n",
}
GOOSE_ROWS = "SELECT version_id, is_applied FROM goose_db_version ORDER BY id"


def _project(root: Path, files: dict[str, str], config: str = "") -> Settings:
    (root / "db").mkdir()
    for name, text in files.items():
        (root / "db" / name).write_text(text)
    (root / "backout.toml").write_text('migrations = ["db"]\n' + config)
    return load_settings(root, environ={})


def _goose_up(conn: psycopg.Connection[Any], *versions: int) -> None:
    """What ``goose up`` leaves: its table with the version 0 row, a row per version."""
    make(conn, GOOSE, "goose_db_version")
    for version in (0, *versions):
        conn.execute(
            "INSERT INTO goose_db_version (version_id, is_applied) VALUES (%s, true)", (version,)
        )


@pytest.fixture
def goose(tmp_path: Path, conn: psycopg.Connection[Any]) -> Settings:
    settings = _project(tmp_path, GOOSE_FILES)
    conn.execute("CREATE TABLE users (id int PRIMARY KEY, email text)")
    _goose_up(conn, 1, 2)
    return settings


def test_status_reads_what_goose_applied(goose: Settings, target: Target) -> None:
    states = status(goose, target)
    assert [(s.name, s.state.value, s.history_tool) for s in states] == [
        ("00001_create_users", "applied", "goose"),
        ("00002_add_email", "applied", "goose"),
    ]
    assert states[0].history_table == "goose_db_version"


def test_a_rollback_writes_gooses_table_as_goose_down_does(
    goose: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    rollback(goose, target, ME, "00002", options=FAST)

    assert rows(conn, GOOSE_ROWS) == [(0, True), (1, True)]
    assert rows(conn, "SELECT count(*) FROM pg_attribute WHERE attname = 'email'") == [(0,)]
    assert rows(conn, "SELECT to_regclass('schema_migrations')") == [(None,)]  # no table of ours
    (audit,) = rows(conn, "SELECT history_table, outcome FROM backout_audit_event")
    assert audit == ("goose_db_version", "success")


def test_an_emergency_writes_gooses_table_and_opens_the_incident(
    goose: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    request = procedure.Request(reference="00002", reason="emails broke", no_git=True)

    result = procedure.emergency(goose, target, ME, request)

    assert rows(conn, GOOSE_ROWS) == [(0, True), (1, True)]
    assert result.postmortem is not None
    states = [s.state.value for s in status(goose, target)]
    assert states == ["applied", "rolled_back", "pending"]  # the fix-forward stub is pending


def test_apply_stays_gooses_job_unless_the_configuration_says_otherwise(
    goose: Settings, target: Target, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    rollback(goose, target, ME, "00002", options=FAST)

    with pytest.raises(RefusedError) as refused:
        apply(goose, target, ME, options=FAST, reapply=["00002"])
    assert "db's migrations are applied by goose" in refused.value.message
    assert 'history = "goose"' in (refused.value.hint or "")
    assert rows(conn, GOOSE_ROWS) == [(0, True), (1, True)]

    (tmp_path / "backout.toml").write_text('migrations = ["db"]\nhistory = "goose"\n')
    allowed = load_settings(tmp_path, environ={})
    apply(allowed, target, ME, options=FAST, reapply=["00002"])
    assert rows(conn, GOOSE_ROWS) == [(0, True), (1, True), (2, True)]


MIGRATE_FILES = {
    "1_create_users.up.sql": "CREATE TABLE users (id int PRIMARY KEY);\n",
    "1_create_users.down.sql": "DROP TABLE users;\n",
    "2_add_email.up.sql": "ALTER TABLE users ADD COLUMN email text;\n",
    "2_add_email.down.sql": "ALTER TABLE users DROP COLUMN email;\n",
}


def test_a_dirty_golang_migrate_table_is_explained_and_never_cleared(
    tmp_path: Path, target: Target, conn: psycopg.Connection[Any]
) -> None:
    settings = _project(tmp_path, MIGRATE_FILES)
    conn.execute("CREATE TABLE users (id int PRIMARY KEY)")
    make(conn, GOLANG_MIGRATE, "schema_migrations")
    conn.execute("INSERT INTO schema_migrations VALUES (2, true)")  # 2 failed half-way

    dirty = next(s for s in status(settings, target) if s.version == "2")
    assert dirty.state.value == "dirty"
    assert dirty.history_tool == "golang-migrate"
    assert any("migrate force" in trouble for trouble in dirty.troubles)

    request = procedure.Request(reference="2", reason="emails broke", no_git=True)
    with pytest.raises(RefusedError) as refused:
        procedure.emergency(settings, target, ME, request)
    assert "golang-migrate's history table says" in refused.value.message
    assert rows(conn, "SELECT version, dirty FROM schema_migrations") == [(2, True)]


def test_what_the_tools_table_cannot_record_is_refused_before_anything_runs(
    tmp_path: Path, target: Target, conn: psycopg.Connection[Any]
) -> None:
    """golang-migrate keeps one version: rolling back 1 while 2 is applied cannot be written."""
    settings = _project(tmp_path, MIGRATE_FILES)
    conn.execute("CREATE TABLE users (id int PRIMARY KEY, email text)")
    make(conn, GOLANG_MIGRATE, "schema_migrations")
    conn.execute("INSERT INTO schema_migrations VALUES (2, false)")
    request = procedure.Request(reference="1", reason="users broke", no_git=True)

    with pytest.raises(RefusedError):
        procedure.emergency(settings, target, ME, request, options=FAST)

    assert rows(conn, "SELECT version, dirty FROM schema_migrations") == [(2, False)]
    assert rows(conn, "SELECT to_regclass('users') IS NOT NULL") == [(True,)]
    assert not (tmp_path / "ops").exists()  # no incident opened

    rollback(settings, target, ME, "2", options=FAST)
    assert rows(conn, "SELECT version, dirty FROM schema_migrations") == [(1, False)]


def test_a_custom_table_name_is_honoured(
    tmp_path: Path, target: Target, conn: psycopg.Connection[Any]
) -> None:
    """goose -table ops.goose_versions: history_tables names it, with its schema."""
    config = 'history = "goose"\n[history_tables]\ndb = "ops.goose_versions"\n'
    settings = _project(tmp_path, GOOSE_FILES, config)
    conn.execute("CREATE SCHEMA ops; CREATE TABLE users (id int PRIMARY KEY, email text)")
    conn.execute(GOOSE.format("ops.goose_versions").encode())
    for version in (0, 1, 2):
        conn.execute(
            "INSERT INTO ops.goose_versions (version_id, is_applied) VALUES (%s, true)", (version,)
        )

    assert [s.state.value for s in status(settings, target)] == ["applied", "applied"]
    rollback(settings, target, ME, "00002", options=FAST)

    versions = "SELECT version_id FROM ops.goose_versions ORDER BY id"
    assert rows(conn, versions) == [(0,), (1,)]
    assert rows(conn, "SELECT to_regclass('goose_db_version')") == [(None,)]
