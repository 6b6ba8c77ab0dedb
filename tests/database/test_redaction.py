"""Redaction: no password in what backout shows or writes, whatever the URL's scheme case or the
password's characters, in conninfo strings and in libpq's own errors; another session's query
text shown as its shape (literals replaced by placeholders), on screen, in the postmortem and
in the incident's commit; URLs typed into free text redacted in files and audit rows."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from backout.database.connection import DatabaseError, connect
from backout.database.lock import Session
from backout.errors import ExitCode
from backout.redaction import normalize_query, redact
from tests.helpers import git_commit
from tests.runner import run
from tests.samples import SAMPLES

SECRET = "s3cr" + uuid.uuid4().hex[:8]


# --- URLs and conninfo strings ---------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme", ["POSTGRESQL://", "Postgres://", "postgres://", "postgresql+psycopg://"]
)
def test_the_password_is_hidden_whatever_the_scheme_case(scheme: str) -> None:
    text = f"cannot connect to {scheme}ada:{SECRET}@db.example.com:5432/app: refused"

    assert redact(text) == f"cannot connect to {scheme}ada:***@db.example.com:5432/app: refused"


@pytest.mark.parametrize(
    "password",
    [f"{SECRET} pw", f"{SECRET}@tpw", f"{SECRET}:x:y", f"{SECRET}/z", f"{SECRET}#h", f"{SECRET}%",
     f"{SECRET}%20q", f"{SECRET}'q", f"{SECRET}?q", f"a b@{SECRET}"],
    ids=["space", "at", "colon", "slash", "hash", "percent", "encoded", "quote", "question",
         "mixed"],
)  # fmt: skip
def test_the_password_is_hidden_whatever_characters_it_holds(password: str) -> None:
    text = f"rolled back on postgresql://ada:{password}@db.example.com:5432/app, then stopped"

    shown = redact(text)

    assert shown == "rolled back on postgresql://ada:***@db.example.com:5432/app, then stopped"


def test_passwords_in_conninfo_strings_and_query_parameters_are_hidden() -> None:
    assert redact(f"host=x password='{SECRET} b' dbname=y") == "host=x password=*** dbname=y"
    assert redact(f'host=x password="{SECRET} b" dbname=y') == "host=x password=*** dbname=y"
    assert redact(f"host=x password='it\\'s{SECRET}'") == "host=x password=***"
    assert redact(f"PGPASSWORD={SECRET} backout apply") == "PGPASSWORD=*** backout apply"
    assert (
        redact(f"postgresql://h/db?sslmode=require&password={SECRET}&x=1")
        == "postgresql://h/db?sslmode=require&password=***&x=1"
    )


def test_text_without_a_password_is_left_as_it_is() -> None:
    texts = [
        "postgresql://postgres@127.0.0.1:5432/postgres, owner ada@example.com",
        "postgresql://db.example.com:5432/app failed; ask ada@example.com",
        "postgresql://u:***@h/db?application_name=a@b",
        "password_encryption = 'scram-sha-256'",
    ]
    assert [redact(t) for t in texts] == texts


def test_libpq_quoting_a_piece_of_the_password_is_redacted_against_the_url_in_use() -> None:
    url = f"postgresql://ada:{SECRET}@tpw@127.0.0.1:5432/app"
    echoed = f"failed to resolve host 'tpw@127.0.0.1'; {SECRET}"

    assert SECRET not in redact(echoed, url)
    assert "tpw" not in redact(echoed, url)
    assert redact(f'unexpected spaces found in "{SECRET} pw"') == 'unexpected spaces found in "***"'


@pytest.mark.parametrize(
    "password", [f"{SECRET} pw", f"{SECRET}@tpw", f"{SECRET}/x"], ids=["space", "at", "slash"]
)
def test_connecting_with_a_password_libpq_cannot_read_never_shows_it(password: str) -> None:
    url = f"postgresql://ada:{password}@127.0.0.1:1/app"

    with pytest.raises(DatabaseError) as caught:
        connect(url).close()

    for piece in (SECRET, "tpw", "pw@", password):
        assert piece not in str(caught.value)


# --- other sessions' query text ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "shape"),
    [
        ("ALTER ROLE app PASSWORD 'hunter2'", "ALTER ROLE app PASSWORD $1"),
        ("SELECT * FROM users WHERE email = 'ada@example.com' AND id = 42",
         "SELECT * FROM users WHERE email = $1 AND id = $2"),
        ("UPDATE t SET card = E'4111\\'1111', n = 1.5e3 WHERE k = $1",
         "UPDATE t SET card = $2, n = $3 WHERE k = $1"),
        ("CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (password 'p4ss')",
         "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (password $1)"),
        ("SELECT $tag$ secret $tag$, B'0101', X'ff' /* token=abc */ -- note",
         "SELECT $1, $2, $3"),
        ("SELECT a.b\n  FROM public.t", "SELECT a.b FROM public.t"),
    ],
    ids=["alter-role", "where", "escapes", "utility", "comments", "layout"],
)  # fmt: skip
def test_query_text_is_normalised_like_pg_stat_statements(query: str, shape: str) -> None:
    assert normalize_query(query) == shape


def test_query_text_cut_inside_a_literal_keeps_only_what_precedes_it() -> None:
    # pg_stat_activity cuts the text at track_activity_query_size, maybe inside a literal
    assert normalize_query("ALTER ROLE app PASSWORD 'hunter2 and mo") == "ALTER ROLE app PASSWORD …"
    assert normalize_query("SELECT 1 WHERE x = 'abc") == "SELECT $1 WHERE x = …"
    assert normalize_query("\"unterminated 'hunter2'") == "(query text withheld)"


def test_a_session_is_described_with_its_query_normalised() -> None:
    session = Session(
        pid=7, user="app", application=f"psql postgresql://u:{SECRET}@h/db", state="active",
        query="ALTER ROLE app PASSWORD 'hunter2'", since=datetime(2026, 11, 20, 10, tzinfo=UTC),
    )  # fmt: skip

    described = session.describe()

    assert "hunter2" not in described
    assert SECRET not in described
    assert "query 'ALTER ROLE app PASSWORD $1'" in described


# --- on a real server, through the command line ---------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    shutil.copytree(SAMPLES, tmp_path / "migrations")
    (tmp_path / "backout.toml").write_text(
        'migrations = ["migrations"]\n[environments.preview]\nurl_env = "PREVIEW_URL"\n'
    )
    files = {str(p.relative_to(tmp_path)): p.read_text() for p in tmp_path.rglob("*.*")}
    git_commit(tmp_path, files, "Add the migrations", at="2026-11-20T10:00:00+00:00")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PREVIEW_URL", database_url)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS"):
        monkeypatch.delenv(name, raising=False)
    assert run("apply", "--yes").exit_code == 0
    return tmp_path


@pytest.fixture
def blocker(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A session holding ACCESS EXCLUSIVE on jobs whose last query set a role's password."""
    role = "backout_blk_" + uuid.uuid4().hex[:8]
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        with psycopg.connect(database_url, application_name="psql") as conn:
            conn.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(SECRET)
                )
            )
            yield conn
            conn.rollback()
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def everything_written(project: Path, database_url: str, *outputs: str) -> list[str]:
    """The outputs, every file of the project, its git history and backout's tables."""
    texts = [*outputs]
    texts += [p.read_text(errors="replace") for p in project.rglob("*")
              if p.is_file() and ".git" not in p.parts]  # fmt: skip
    log = ["git", "log", "-p", "--all"]
    texts.append(subprocess.run(log, cwd=project, capture_output=True, text=True).stdout)
    with psycopg.connect(database_url) as conn:
        for table in ("backout_audit_event", "schema_migrations"):
            query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))
            texts += [str(row) for row in conn.execute(query)]
    return texts


def test_a_blocking_sessions_query_is_shown_normalised_when_a_rollback_times_out(
    project: Path, database_url: str, blocker: psycopg.Connection[Any]
) -> None:
    result = run("rollback", "006", "--yes", "--lock-timeout", "1s", "--lock-retries", "0")

    assert result.exit_code == ExitCode.LOCKED, result.stderr
    assert f"pid {blocker.info.backend_pid}" in result.stderr
    assert "query 'ALTER ROLE \"backout_blk_" in result.stderr
    assert "PASSWORD $1'" in result.stderr
    assert [
        t for t in everything_written(project, database_url, result.stderr) if SECRET in t
    ] == []


def test_a_blocking_sessions_query_reaches_the_postmortem_and_the_commit_normalised(
    project: Path, database_url: str, blocker: psycopg.Connection[Any]
) -> None:
    options = ["--yes", "--no-rehearsal", "--lock-timeout", "1s", "--lock-retries", "0"]
    options += ["--no-backup", "--backup-waiver", "the column holds defaults only"]

    blocked = run("emergency", "006", "--reason", "claims stalled", *options)
    assert blocked.exit_code == ExitCode.LOCKED, blocked.stderr
    blocker.rollback()  # the blocker goes; the re-run continues the incident and commits it
    finished = run("emergency", "006", "--reason", "claims stalled", *options)

    assert finished.exit_code == 0, finished.stderr
    postmortem = next((project / "ops/postmortems").glob("INC-*.md")).read_text()
    assert "PASSWORD $1" in postmortem
    written = everything_written(project, database_url, blocked.stderr, finished.stdout)
    assert [t for t in written if SECRET in t] == []


def test_a_url_typed_into_the_reason_is_redacted_in_files_commits_and_audit_rows(
    project: Path, database_url: str
) -> None:
    reason = f"claims stalled; reproduced on postgresql://admin:{SECRET}@db.internal/prod"

    owner = f"ada (postgres://ada:{SECRET}@db.internal/prod)"

    emergency = run(
        "emergency", "006", "--reason", reason, "--owner", owner, "--yes", "--no-rehearsal",
        "--no-backup", "--backup-waiver", reason,
    )  # fmt: skip
    incident = next((project / "ops/postmortems").glob("INC-*.md")).name[:15]
    status = run("postmortems", "set-status", incident, "not_required", "--reason", reason)
    rollback = run("rollback", "005", "--env", "preview", "--yes", "--reason", reason)

    assert emergency.exit_code == 0, emergency.stderr
    assert status.exit_code == 0, status.stderr
    assert rollback.exit_code == 0, rollback.stderr
    written = everything_written(project, database_url, emergency.stdout, emergency.stderr)
    assert [t for t in written if SECRET in t] == []
    postmortem = next((project / "ops/postmortems").glob("INC-*.md")).read_text()
    assert "postgresql://admin:***@db.internal/prod" in postmortem
    assert "postgresql://admin:***@db.internal/prod" in (project / "docs/decisions.md").read_text()
