"""Versions, for real: two files with one version in a folder, eight ``backout new`` at once.

Every command runs as a process of its own; the database (catalog, history, audit) and the files
are compared before and after, never what backout printed alone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.errors import ExitCode
from tests.pg import Server
from tests.sample_project import write
from tests.samples import SAMPLES

PATIENCE = 60.0


def backout(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``backout ARGS`` as a process of its own, to its end."""
    return subprocess.run(
        [sys.executable, "-m", "backout", *args],
        cwd=project,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str, postgres_server: Server
) -> Path:
    shutil.copytree(SAMPLES, tmp_path / "migrations")
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n')
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BACKOUT_SCRATCH_DATABASE_URL", postgres_server.url)  # no embedded start
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def add_widgets(project: Path, name: str = "007_add_widgets.sql") -> None:
    write(project, name, "CREATE TABLE widgets (id int);", "DROP TABLE widgets;")


def add_gadgets(project: Path, name: str = "007_add_gadgets.sql") -> None:
    write(project, name, "CREATE TABLE gadgets (id int);", "DROP TABLE gadgets;")


def snapshot(conn: psycopg.Connection[Any], project: Path) -> dict[str, Any]:
    """What a command may change: tables, history, audit rows and the project's files."""

    def query(text: str) -> list[tuple[Any, ...]]:
        return conn.execute(text).fetchall()

    history = "SELECT version, name, checksum FROM schema_migrations ORDER BY version, name"
    has_history = query("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0]
    has_audit = query("SELECT to_regclass('backout_audit_event') IS NOT NULL")[0][0]
    return {
        "tables": query(
            "SELECT relname FROM pg_class JOIN pg_namespace n ON n.oid = relnamespace "
            "WHERE relkind = 'r' AND nspname NOT IN ('pg_catalog', 'information_schema') "
            "ORDER BY relname"
        ),
        "columns": query(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2"
        ),
        "history": query(history) if has_history else None,
        "audit": query("SELECT id, action, outcome FROM backout_audit_event ORDER BY id")
        if has_audit
        else None,
        "files": sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()),
    }


def one_line_naming_both(stderr: str) -> None:
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("backout: error: "), stderr
    assert "migrations/007_add_gadgets.sql" in stderr
    assert "migrations/007_add_widgets.sql" in stderr
    assert "share version 007" in stderr
    assert "Traceback" not in stderr
    assert "internal error" not in stderr


def test_apply_runs_nothing_when_two_files_share_a_version(
    project: Path, conn: psycopg.Connection[Any]
) -> None:
    add_gadgets(project)
    add_widgets(project)
    before = snapshot(conn, project)

    result = backout(project, "apply", "--yes")

    assert result.returncode == ExitCode.USAGE, result.stderr
    one_line_naming_both(result.stderr)
    assert "rename it to 008_<description>.sql" in result.stderr
    assert snapshot(conn, project) == before
    assert before["history"] is None  # not even the history table was created


@pytest.mark.parametrize(
    "command",
    [
        ("apply", "--yes"),
        ("apply", "--yes", "--to", "006"),
        ("baseline", "--yes"),
        ("rollback", "007_add_widgets", "--yes", "--reason", "r"),
        ("rollback", "007", "--yes", "--reason", "r"),
        ("rollback", "migrations/007_add_widgets.sql", "--yes", "--reason", "r"),
        ("emergency", "007_add_widgets", "--reason", "down", "--yes", "--no-git"),
        ("emergency", "007_add_widgets", "--reason", "down", "--yes", "--dry-run"),
        ("verify", "--all"),
        ("verify", "007_add_widgets"),
    ],
    ids=lambda c: " ".join(c),
)
def test_a_duplicate_merged_after_an_apply_is_refused_by_every_command_that_runs_sql(
    project: Path,
    conn: psycopg.Connection[Any],
    postgres_server: Server,
    command: tuple[str, ...],
) -> None:
    add_widgets(project)
    assert backout(project, "apply", "--yes").returncode == 0
    add_gadgets(project)  # another branch's 007, merged after 007_add_widgets was applied
    before = snapshot(conn, project)

    scratch = ("--scratch-database-url", postgres_server.url) if command[0] == "verify" else ()

    result = backout(project, *command, *scratch)

    assert result.returncode == ExitCode.USAGE, result.stderr
    one_line_naming_both(result.stderr)
    assert snapshot(conn, project) == before
    assert ("widgets",) in before["tables"]
    assert ("gadgets",) not in before["tables"]


def test_status_shows_both_files_and_the_one_not_applied_is_pending_not_modified(
    project: Path,
) -> None:
    add_widgets(project)
    assert backout(project, "apply", "--yes").returncode == 0
    add_gadgets(project)

    shown = backout(project, "status")
    checked = backout(project, "status", "--check")

    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[0]: line for line in shown.stdout.splitlines() if line.startswith("  ")}
    assert lines["007_add_widgets"].split()[1] == "applied"
    assert lines["007_add_gadgets"].split()[1] == "pending"
    assert "007_add_widgets.sql also has version 007" in lines["007_add_gadgets"]
    assert "modified" not in shown.stdout
    assert checked.returncode == ExitCode.PROBLEMS


def test_lint_reports_the_duplicate(project: Path) -> None:
    add_widgets(project)
    add_gadgets(project)

    result = backout(project, "lint")

    assert result.returncode == ExitCode.PROBLEMS
    assert "duplicate-version" in result.stdout


# --- backout new, eight at once -------------------------------------------------------------

_WAITING = """
import sys, time
from pathlib import Path
from backout.cli import main
import backout.migrations.authoring, backout.templating, jinja2  # loaded before the start
go = Path(sys.argv[1])
Path(sys.argv[2]).touch()
while not go.exists():
    time.sleep(0.001)
sys.exit(main(["new", sys.argv[3]]))
"""


SLOW_TEMPLATE = (
    "{% for _ in range(3000000) %}{% endfor %}"  # rendering takes a while: the race is certain
    + (Path(__file__).resolve().parents[2] / "templates" / "migration.sql.j2").read_text()
)


def test_eight_backout_new_started_together_take_eight_versions(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(SAMPLES, project / "migrations")
    (project / "backout.toml").write_text('migrations = ["migrations"]\ntemplates = "templates"\n')
    (project / "templates").mkdir()
    (project / "templates" / "migration.sql.j2").write_text(SLOW_TEMPLATE)
    go, ready = tmp_path / "go", tmp_path / "ready"
    ready.mkdir()
    names = [f"change number {n}" for n in range(8)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _WAITING, str(go), str(ready / str(n)), name],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n, name in enumerate(names)
    ]
    try:
        deadline = time.monotonic() + PATIENCE
        while len(list(ready.iterdir())) < len(names):  # every one loaded and waiting
            assert time.monotonic() < deadline, "the eight processes never got ready"
            time.sleep(0.01)
        go.touch()
        results = [p.communicate(timeout=PATIENCE) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in processes] == [0] * 8, results

    created = sorted(p.name for p in (project / "migrations").glob("*.sql"))[6:]
    versions = [name.split("_", 1)[0] for name in created]
    assert versions == [f"{n:03d}" for n in range(7, 15)]
    assert sorted(name.split("_", 1)[1] for name in created) == sorted(
        f"change_number_{n}.sql" for n in range(8)
    )
    for name in created:  # each file's header names the file it is in
        header = (project / "migrations" / name).read_text().splitlines()[0]
        assert re.fullmatch(rf"-- Migration: {re.escape(name)}", header), header
    lint = backout(project, "lint")
    assert "duplicate-version" not in lint.stdout
