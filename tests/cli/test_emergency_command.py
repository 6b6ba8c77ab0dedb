"""``backout emergency`` on the command line: exit codes, stable JSON keys, no password anywhere."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from backout.errors import ExitCode
from tests.helpers import git_commit
from tests.runner import run
from tests.samples import SAMPLES

PASSWORD = "pw-" + uuid.uuid4().hex[:10]


@pytest.fixture
def url_with_password(database_url: str) -> Iterator[str]:
    """The test database, reached as a role that has a password (whatever the server's auth)."""
    role = "backout_pw_" + uuid.uuid4().hex[:8]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(PASSWORD)
            )
        )
    parts = urlsplit(database_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    yield urlunsplit(parts._replace(netloc=f"{role}:{quote(PASSWORD)}@{host}"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url_with_password: str) -> Path:
    shutil.copytree(SAMPLES, tmp_path / "migrations")
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n')
    files = {str(p.relative_to(tmp_path)): p.read_text() for p in tmp_path.rglob("*.*")}
    git_commit(tmp_path, files, "Add the migrations", at="2026-11-20T10:00:00+00:00")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url_with_password)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS"):
        monkeypatch.delenv(name, raising=False)
    assert run("apply", "--yes").exit_code == 0
    return tmp_path


def test_emergency_json_has_the_stable_keys_and_no_password_is_written_anywhere(
    project: Path, url_with_password: str
) -> None:
    result = run("emergency", "006", "--reason", "claims stalled", "--yes", "--json")

    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) >= {
        "incident_id", "migration", "rollback", "postmortem", "fix_forward", "backup",
        "review_due", "audit_event", "git",
    }  # fmt: skip
    assert set(out["rollback"]) >= {"statements", "sha256", "outcome"}
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    emergency = readme.split("### backout emergency\n", 1)[1]
    documented = "{incident_id" + emergency.split("`--json` prints `{incident_id", 1)[1]
    documented = documented.split("\n#", 1)[0]
    keys = {*out, *out["rollback"], *out["git"], *out["backup"]}
    assert sorted(k for k in keys if not re.search(rf"\b{k}\b", documented)) == []
    assert out["rollback"]["outcome"] == "rolled_back"
    assert set(out["git"]) >= {"branch", "commit"}
    assert out["git"]["branch"] == f"incident/{out['incident_id']}"
    assert out["backup"]["items"][0]["table"] == "public.jobs"
    # the password: not in the output, the files, the commit or the database's records
    written = [result.stdout, result.stderr]
    written += [p.read_text() for p in project.rglob("*") if p.is_file() and ".git" not in p.parts
                and p.suffix != ".copy"]  # fmt: skip
    written.append(
        subprocess.run(
            ["git", "log", "-p", "--all"], cwd=project, capture_output=True, text=True, check=True
        ).stdout
    )
    with psycopg.connect(url_with_password) as conn:
        written += [str(row) for row in conn.execute("SELECT * FROM backout_audit_event")]
    assert [text for text in written if PASSWORD in text] == []


def test_emergency_refusals_and_usage_errors_are_one_line_with_their_exit_code(
    project: Path,
) -> None:
    not_confirmed = run("emergency", "006", "--no-rehearsal", "--reason", "r")
    unknown = run("emergency", "099", "--no-rehearsal", "--reason", "r", "--yes")
    no_waiver = run("emergency", "006", "--no-rehearsal", "--reason", "r", "--yes", "--no-backup")
    bad_severity = run(
        "emergency", "006", "--no-rehearsal", "--reason", "r", "--yes", "--severity", "SEV9"
    )
    first = run("emergency", "006", "--no-rehearsal", "--reason", "r", "--yes")
    second = run("emergency", "006", "--no-rehearsal", "--reason", "r", "--yes")

    assert not_confirmed.exit_code == ExitCode.REFUSED
    assert not_confirmed.stderr.endswith("pass --yes to confirm\n")
    assert unknown.exit_code == ExitCode.USAGE
    assert no_waiver.exit_code == ExitCode.USAGE
    assert "--backup-waiver" in no_waiver.stderr
    assert bad_severity.exit_code == ExitCode.USAGE
    assert first.exit_code == 0
    assert second.exit_code == ExitCode.REFUSED
    assert "was already rolled back" in second.stderr
    for result in (not_confirmed, unknown, no_waiver, bad_severity, second):
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_a_dry_run_prints_the_plan_and_what_the_backup_would_hold(project: Path) -> None:
    result = run("emergency", "006", "--reason", "r", "--dry-run")

    assert result.exit_code == 0
    assert "public.jobs (id, priority), about 0 rows: DROP COLUMN jobs.priority" in result.stdout
    assert "ok      line 32: ALTER TABLE jobs DROP COLUMN IF EXISTS priority" in result.stdout
    assert result.stdout.rstrip().endswith("Nothing was changed, written or committed.")
    assert not (project / "ops").exists()


def test_an_environment_that_requires_approval_refuses_without_it(
    project: Path, url_with_password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "backout.toml").write_text(
        'migrations = ["migrations"]\n'
        '[environments.production]\nurl_env = "PROD_URL"\nrequire_approval = true\n'
    )
    monkeypatch.setenv("PROD_URL", url_with_password)

    refused = run("emergency", "006", "--env", "production", "--reason", "r", "--yes")
    nothing_written = not (project / "ops").exists()
    approved = run(
        "emergency", "006", "--env", "production", "--reason", "r", "--yes",
        "--approved-by", "Grace (lead)", "--json",
    )  # fmt: skip

    assert refused.exit_code == ExitCode.REFUSED
    assert "requires approval" in refused.stderr
    assert nothing_written
    assert approved.exit_code == 0, approved.stderr
    postmortem = project / json.loads(approved.stdout)["postmortem"]
    assert "approved_by: Grace (lead)" in postmortem.read_text()


def test_without_a_terminal_or_yes_emergency_refuses_before_any_slow_work(project: Path) -> None:
    result = run("emergency", "006", "--reason", "claims stalled")

    assert (result.exit_code, result.stdout) == (ExitCode.REFUSED, "")
    assert result.stderr.startswith("backout: error: the emergency rollback of 006 on ")
    assert result.stderr.endswith(
        "needs confirmation and this is not a terminal; pass --yes to confirm\n"
    )
    assert "rehears" not in result.stderr
    states = {
        m["name"]: m["state"] for m in json.loads(run("status", "--json").stdout)["migrations"]
    }
    assert states["006_add_jobs_priority"] == "applied"
    assert not (project / "ops").exists()


def test_skip_rehearsal_takes_a_reason_and_the_incident_records_it(project: Path) -> None:
    result = run(
        "emergency", "006", "--reason", "claims stalled", "--yes", "--json",
        "--skip-rehearsal", "the scratch server is down",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert "rehearsing" not in result.stderr
    postmortem = project / json.loads(result.stdout)["postmortem"]
    assert "rehearsal on a scratch database: skipped: the scratch server is down" in (
        postmortem.read_text()
    )
