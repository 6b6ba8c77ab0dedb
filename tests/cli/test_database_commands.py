"""The lifecycle commands on the command line: exact messages and exit codes."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from backout.database.lock import LOCK_KEY
from backout.errors import ExitCode
from tests.runner import run
from tests.samples import SAMPLES


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    shutil.copytree(SAMPLES, tmp_path / "migrations")
    (tmp_path / "backout.toml").write_text(
        'migrations = ["migrations"]\n'
        "[environments.production]\n"
        'url_env = "PROD_URL"\n'
        "require_approval = true\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PROD_URL", database_url)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_apply_without_yes_off_a_terminal_is_refused(project: Path) -> None:
    result = run("apply")

    assert (result.exit_code, result.stdout) == (ExitCode.REFUSED, "")
    assert result.stderr.endswith(
        "needs confirmation and this is not a terminal; pass --yes to confirm\n"
    )


def test_apply_then_status_json(project: Path) -> None:
    applied = run("apply", "--to", "002", "--yes")
    status = run("status", "--json")

    assert applied.exit_code == 0
    assert applied.stdout.startswith("Applied 001_create_jobs, 002_create_core_schema on ")
    assert applied.stderr == (
        "applying 001_create_jobs (4 statements)\napplying 002_create_core_schema (4 statements)\n"
    )
    migrations = json.loads(status.stdout)["migrations"]
    assert [(m["version"], m["state"], m["applied_by"]) for m in migrations] == [
        ("001", "applied", "github:ada"),
        ("002", "applied", "github:ada"),
        ("003", "pending", None),
        ("004", "pending", None),
        ("005", "pending", None),
        ("006", "pending", None),
    ]
    assert set(migrations[0]) >= {
        "version",
        "name",
        "path",
        "state",
        "applied_at",
        "applied_by",
        "checksum",
    }


def test_status_check_exits_3_while_anything_is_pending(project: Path) -> None:
    assert run("status", "--check").exit_code == ExitCode.PROBLEMS
    run("apply", "--yes")
    assert run("status", "--check").exit_code == ExitCode.OK


def test_apply_dry_run_prints_the_sql_and_changes_nothing(project: Path) -> None:
    result = run("apply", "--dry-run", "--to", "003")

    assert result.exit_code == 0
    assert "    CREATE INDEX idx_markets_status_closes_at" in result.stdout
    assert "\nDry run: nothing was changed on " in result.stdout
    assert json.loads(run("status", "--json").stdout)["migrations"][0]["state"] == "pending"


def test_rollback_print_sql_needs_no_database(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL")

    result = run("rollback", "004", "--print-sql")

    assert result.stdout == (
        "ALTER TABLE events DROP CONSTRAINT IF EXISTS events_impact_score_range;\n"
        "ALTER TABLE events DROP COLUMN IF EXISTS impact_score;\n"
    )


def test_rollback_and_its_refusals(project: Path) -> None:
    run("apply", "--yes")

    done = run("rollback", "006", "--yes", "--reason", "slow claims")
    again = run("rollback", "006", "--yes")
    reapply = run("apply", "--yes")

    assert done.exit_code == 0
    assert done.stdout.startswith("Rolled back 006_add_jobs_priority on ")
    assert again.exit_code == ExitCode.REFUSED
    assert again.stderr.startswith("backout: error: 006_add_jobs_priority is not applied in ")
    assert reapply.exit_code == ExitCode.OK  # 006 is skipped, saying how to run it again
    assert "pass --reapply 006 to run it again" in reapply.stdout


def test_production_needs_an_approver_and_a_reason(project: Path) -> None:
    refused = run("apply", "--env", "production", "--yes")
    approved = run(
        "apply", "--env", "production", "--yes", "--approved-by", "lead", "--reason", "r12"
    )

    assert refused.exit_code == ExitCode.REFUSED
    assert refused.stderr == (
        "backout: error: environment 'production' requires approval; pass --approved-by NAME "
        "(someone other than you) and --reason TEXT\n"
    )
    assert approved.exit_code == 0
    assert approved.stdout.startswith("Applied 001_create_jobs")
    assert "on production." in approved.stdout


def test_a_held_lock_exits_5_naming_the_holder(project: Path, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        pid = holder.info.backend_pid

        result = run("apply", "--yes", "--lock-wait", "200ms")

    assert result.exit_code == ExitCode.LOCKED
    assert f"another backout run holds the migration lock (pid {pid}" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status", "--env", "prod"], "unknown environment 'prod'; did you mean 'production'?"),
        (["apply", "--yes", "--lock-timeout", "soon"], "--lock-timeout 'soon' is not a duration"),
        (
            ["status", "--env", "production", "--database-url", "postgresql://x"],
            "both --database-url and --env were given",
        ),
    ],
)
def test_bad_database_options_are_usage_errors(
    project: Path, args: list[str], message: str
) -> None:
    result = run(*args)

    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith(f"backout: error: {message}")


def test_no_database_at_all_is_a_usage_error(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL")

    result = run("status")

    assert (result.exit_code, result.stderr) == (
        ExitCode.USAGE,
        "backout: error: no database given; pass --database-url URL, --env NAME, or set "
        "DATABASE_URL\n",
    )


def run_on_a_terminal(args: list[str], answer: str, cwd: Path) -> tuple[int, str]:
    """Run ``backout ARGS`` with a pseudo-terminal as its standard input, answering its prompt."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "backout", *args],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=slave,
        cwd=cwd,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 30
    while b" to apply:" not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            seen += os.read(master, 4096)
    os.write(master, answer.encode() + b"\n")
    stdout, _ = process.communicate(timeout=30)
    os.close(master)
    return process.returncode, seen.decode() + stdout.decode()


def test_on_a_terminal_apply_shows_the_sql_and_needs_the_version_typed(project: Path) -> None:
    wrong, shown = run_on_a_terminal(["apply", "--to", "001"], "yes", project)
    right, done = run_on_a_terminal(["apply", "--to", "001"], "001", project)

    assert "    CREATE TABLE jobs (" in shown
    assert "Type 001 to apply up to 001_create_jobs on " in shown
    assert wrong == ExitCode.REFUSED
    assert right == ExitCode.OK
    assert "Applied 001_create_jobs on " in done
