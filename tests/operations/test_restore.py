"""``backout restore <incident>`` and RESTORE.md, against PostgreSQL, after a real emergency.

The fixture: the sample migrations 001 and 002; 002's rollback drops ``events`` (the child, with
a foreign key to ``markets``) and then ``markets``, so the backup holds the child first. Both
ways back, the command and RESTORE.md through psql, must load the parent first and bring every
row back; the database is checked, not what backout printed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.operations import emergency as procedure
from backout.postmortems.collection import find, load
from tests.helpers import git_commit
from tests.incident_project import ENGINEER, applied, committed_project
from tests.runner import run
from tests.samples import SAMPLES

SEED = """
INSERT INTO markets (slug, title, category, status) VALUES
  ('m1', 'Market one', 'economy', 'open'), ('m2', 'Market ''two''', 'sport', 'draft');
INSERT INTO events (market_id, kind, headline, source_url, occurred_at) VALUES
  (1, 'news', 'first', NULL, '2026-11-24 03:00:00.123456+00'),
  (2, 'announcement', E'tab\\there', 'https://x.test', '2026-11-24 04:00:00+00'),
  (2, 'resolution', 'ünïcode 🚀', NULL, 'infinity');
"""
TABLES = ("markets", "events")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "migrations").mkdir(parents=True)
    for name in ("001_create_jobs.sql", "002_create_core_schema.sql"):
        shutil.copy(SAMPLES / name, root / "migrations" / name)
    (root / "backout.toml").write_text('migrations = ["migrations"]\n')
    files = {str(p.relative_to(root)): p.read_text() for p in root.rglob("*.*")}
    git_commit(root, files, "Add the migrations", at="2026-11-20T10:00:00+00:00")
    return root


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project, environ={})


@pytest.fixture
def incident(settings: Settings, database_url: str) -> tuple[str, dict[str, list[Any]]]:
    """The emergency on 002 done, the forward migration applied again by hand: the incident's
    id and every row the tables held before."""
    target: Target = applied(settings, database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SEED)
        before = {t: everything(conn, t) for t in TABLES}
    request = procedure.Request(reference="002", reason="markets broke", rehearse=False)
    result = procedure.emergency(settings, target, ENGINEER, request)
    assert result.incident_id is not None
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('markets')").fetchone() == (None,)
        conn.execute(forward(settings))
    return result.incident_id, before


def forward(settings: Settings) -> str:
    """002's forward SQL (its ROLLBACK section is comments)."""
    return (settings.root / "migrations/002_create_core_schema.sql").read_text()


def everything(conn: psycopg.Connection[Any], table: str) -> list[Any]:
    """Every row as PostgreSQL prints it, so timestamps and text compare exactly."""
    return conn.execute(f"SELECT r::text FROM {table} AS r ORDER BY 1").fetchall()


def state(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        rows = {t: everything(conn, t) for t in TABLES}
        audit = conn.execute("SELECT count(*) FROM backout_audit_event").fetchone()
        history = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
    return {"rows": rows, "audit": audit, "history": history}


def restore(project: Path, url: str, *args: str) -> Any:
    here = Path.cwd()
    os.chdir(project)
    try:
        return run("restore", *args, "--database-url", url)
    finally:
        os.chdir(here)


def test_restore_brings_every_row_back_parents_first_in_one_transaction(
    project: Path, settings: Settings, database_url: str, incident: tuple[str, Any]
) -> None:
    incident_id, before = incident
    manifest = (project / ".backout/backups" / incident_id / "manifest.json").read_text()
    assert manifest.index('"public.events"') < manifest.index('"public.markets"')  # drop order

    result = restore(project, database_url, incident_id, "--yes")

    assert result.exit_code == 0, result.stderr
    assert state(database_url)["rows"] == before
    assert re.search(r"1\. public\.markets: 2 rows.*\n.*2\. public\.events: 3 rows", result.stdout)
    with psycopg.connect(database_url) as conn:
        audit = conn.execute(
            "SELECT action, outcome, details->>'incident' FROM backout_audit_event"
            " ORDER BY id DESC LIMIT 1"
        ).fetchone()
        # the sequences were reset: new rows do not collide with the restored ones
        new = conn.execute(
            "INSERT INTO markets (slug, title, category) VALUES ('m3', 't', 'c') RETURNING id"
        ).fetchone()
    assert audit == ("restore", "success", incident_id)
    assert new == (3,)
    timeline = find(load(settings.postmortems), incident_id).pm.timeline
    assert "backup restored: public.markets (2 rows), public.events (3 rows)" in timeline[-1].text


def test_a_changed_backup_file_is_refused_naming_it(
    project: Path, database_url: str, incident: tuple[str, Any]
) -> None:
    incident_id, _ = incident
    folder = project / ".backout/backups" / incident_id
    damaged = sorted(folder.glob("*.copy"))[0]
    damaged.write_bytes(damaged.read_bytes() + b"\x00")
    earlier = state(database_url)

    result = restore(project, database_url, incident_id, "--yes")

    assert result.exit_code == 4
    assert damaged.name in result.stderr
    assert "SHA-256" in result.stderr
    assert "Traceback" not in result.stderr
    assert state(database_url) == earlier


def test_a_table_that_holds_rows_is_refused_and_nothing_is_restored(
    project: Path, database_url: str, incident: tuple[str, Any]
) -> None:
    incident_id, _ = incident
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO markets (slug, title, category) VALUES ('new', 'n', 'c')")
    earlier = state(database_url)

    result = restore(project, database_url, incident_id, "--yes")

    assert result.exit_code == 4
    assert "public.markets is not empty (1 rows)" in result.stderr
    assert state(database_url) == earlier


def test_a_dry_run_shows_the_order_and_changes_nothing(
    project: Path, database_url: str, incident: tuple[str, Any]
) -> None:
    incident_id, _ = incident
    earlier = state(database_url)

    result = restore(project, database_url, incident_id, "--dry-run")

    assert result.exit_code == 0, result.stderr
    assert re.search(r"1\. public\.markets: 2 rows.*\n.*2\. public\.events: 3 rows", result.stdout)
    assert state(database_url) == earlier


def test_an_unknown_incident_is_a_usage_error(project: Path, database_url: str) -> None:
    result = restore(project, database_url, "INC-20000101-01", "--yes")

    assert result.exit_code == 2
    assert "no finished backup for INC-20000101-01" in result.stderr


def test_restore_md_followed_literally_with_psql_brings_every_row_back(
    project: Path, database_url: str, incident: tuple[str, Any]
) -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed: RESTORE.md's commands are psql scripts")
    incident_id, before = incident
    folder = project / ".backout/backups" / incident_id
    guide = (folder / "RESTORE.md").read_text()
    script = "\n".join(re.findall(r"```sql\n(.*?)```", guide, flags=re.DOTALL))
    subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, check=True, capture_output=True)

    subprocess.run(
        [psql, "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", database_url, "-f", "-"],
        input=script,
        cwd=folder,
        check=True,
        capture_output=True,
        text=True,
    )

    assert state(database_url)["rows"] == before


def test_a_dropped_column_comes_back_through_an_update(tmp_path: Path, database_url: str) -> None:
    root = committed_project(tmp_path / "all")
    settings = load_settings(root, environ={})
    target = applied(settings, database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO jobs (kind, payload, priority) VALUES ('a', '{}', 5), ('b', '{}', -3)"
        )
        before = conn.execute("SELECT id, kind, priority FROM jobs ORDER BY id").fetchall()
    request = procedure.Request(reference="006", reason="claims stalled", rehearse=False)
    incident_id = procedure.emergency(settings, target, ENGINEER, request).incident_id
    assert incident_id is not None
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE jobs ADD COLUMN priority smallint NOT NULL DEFAULT 0")

    result = restore(root, database_url, incident_id, "--yes")

    assert result.exit_code == 0, result.stderr
    assert "public.jobs: 2 rows updated, columns priority" in result.stdout
    with psycopg.connect(database_url) as conn:
        after = conn.execute("SELECT id, kind, priority FROM jobs ORDER BY id").fetchall()
    assert after == before
