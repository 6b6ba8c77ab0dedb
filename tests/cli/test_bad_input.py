"""Bad input gets one line naming the file, object or option and the fix, with its documented exit
code: never a traceback, never ``internal error``, never a password, never a half-done change.

Each test gives one input that ended in ``internal error: <Exception>`` (or the wrong exit code,
or an incident with no reason) and checks the database or the files did not change.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from backout.errors import ExitCode
from tests.helpers import git_commit
from tests.runner import Result, run
from tests.samples import SAMPLES

PASSWORD = "pw-" + uuid.uuid4().hex[:10]


def one_line(result: Result, exit_code: ExitCode, *names: str) -> str:
    """The result's error: one line, the last (progress lines may come before it), after
    checking the exit code, that it names ``names`` and that nothing printed holds a traceback,
    an internal error or a password."""
    assert result.exit_code == exit_code, result.stderr
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("backout:")]
    assert errors == lines[-1:], result.stderr
    assert lines[-1].startswith("backout: error: "), lines[-1]
    for forbidden in ("Traceback", "internal error", PASSWORD, "s3cr"):
        assert forbidden not in result.stderr + result.stdout
    for name in names:
        assert name in lines[-1]
    return lines[-1]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None) -> Path:
    """A project with the sample migrations and no database."""
    shutil.copytree(SAMPLES, tmp_path / "migrations")
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- files and options, no database -----------------------------------------------------------


def test_a_binary_configuration_file_is_a_usage_error(folder: Path) -> None:
    (folder / "settings.toml").write_bytes(bytes(range(128, 256)) * 4)

    line = one_line(run("--config", "settings.toml", "lint"), ExitCode.USAGE, "settings.toml")

    assert "is not UTF-8 text" in line


def test_a_binary_configuration_file_found_above_the_folder_is_a_usage_error(folder: Path) -> None:
    (folder / "backout.toml").write_bytes(b'migrations = ["caf\xe9"]\n')

    one_line(run("lint"), ExitCode.USAGE, "backout.toml", "is not UTF-8 text")


@pytest.mark.parametrize("url", ["not a url", "localhost:5432/app", "http://db.example.com/app"])
def test_a_database_url_that_is_not_one_is_a_usage_error(folder: Path, url: str) -> None:
    one_line(run("status", "--database-url", url), ExitCode.USAGE, "--database-url")


@pytest.mark.parametrize(
    "password", ["s3cret pw", "s3cr@tpw", "s3cr/et"], ids=["space", "at", "slash"]
)
def test_a_password_libpq_would_misread_is_a_usage_error_that_never_shows_it(
    folder: Path, password: str
) -> None:
    url = f"postgresql://ada:{password}@127.0.0.1:1/app"

    line = one_line(run("status", "--database-url", url), ExitCode.USAGE, "--database-url")

    for piece in (password, "tpw", "et@", "pw@"):
        assert piece not in line
    assert "percent-encoded" in line


def test_a_password_libpq_would_misread_in_database_url_names_the_variable(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://ada:s3cr@tpw@127.0.0.1:1/app")

    one_line(run("status"), ExitCode.USAGE, "DATABASE_URL")


@pytest.mark.parametrize(
    "url",
    [f"POSTGRESQL://ada:{PASSWORD}@127.0.0.1:1/app", f"Postgres://ada:{PASSWORD}@127.0.0.1:1/app",
     f"host=127.0.0.1 port=1 user=ada password='{PASSWORD} x' dbname=app"],
    ids=["upper-case", "mixed-case", "conninfo"],
)  # fmt: skip
def test_an_unreachable_server_is_named_without_the_password(folder: Path, url: str) -> None:
    line = one_line(run("status", "--database-url", url), ExitCode.FAILED, "cannot connect to")

    assert "127.0.0.1" in line


def test_a_binary_template_is_a_usage_error_naming_it(folder: Path) -> None:
    (folder / "templates").mkdir()
    (folder / "templates/migration.sql.j2").write_bytes(bytes(range(128, 256)))

    one_line(run("new", "add_note"), ExitCode.USAGE, "migration.sql.j2", "not UTF-8")
    assert sorted(p.name for p in (folder / "migrations").iterdir()) == sorted(
        p.name for p in SAMPLES.iterdir()
    )


def test_a_migrations_folder_that_is_a_file_names_the_path(folder: Path) -> None:
    (folder / "elsewhere").write_text("not a folder\n")

    line = one_line(
        run("--migrations-dir", "elsewhere", "new", "add_note"), ExitCode.FAILED, "elsewhere"
    )

    assert "a file is where backout needs a folder" in line


@contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """``folder`` unwritable even for root (immutable), or by its mode for another user."""
    root = os.geteuid() == 0
    command = ["chattr", "+i", str(folder)]
    if root and subprocess.run(command, capture_output=True, check=False).returncode != 0:
        pytest.skip("this file system cannot make a folder unwritable for root")
    if not root:
        folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError):
            (folder / "probe").write_text("")
        yield
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        else:
            folder.chmod(0o755)


def test_an_unwritable_migrations_folder_names_the_path_and_writes_nothing(folder: Path) -> None:
    before = sorted((folder / "migrations").iterdir())

    with unwritable(folder / "migrations"):
        result = run("new", "add_note")

    one_line(result, ExitCode.FAILED, str(folder / "migrations"), "cannot write")
    assert sorted((folder / "migrations").iterdir()) == before


# --- on a real server -----------------------------------------------------------------------


def with_role(url: str, role: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}:{quote(password)}@{host}"))


@pytest.fixture
def role(database_url: str) -> Iterator[str]:
    """A login role with a password and no privilege beyond PUBLIC's; dropped afterwards."""
    name = "backout_weak_" + uuid.uuid4().hex[:8]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(PASSWORD)
            )
        )
    yield name
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.fixture
def owner(database_url: str) -> Iterator[str]:
    """The test database, reached as a superuser role that has a password."""
    name = "backout_owner_" + uuid.uuid4().hex[:8]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(PASSWORD)
            )
        )
    yield with_role(database_url, name, PASSWORD)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.fixture
def project(folder: Path, monkeypatch: pytest.MonkeyPatch, owner: str) -> Path:
    """The sample project, applied, in git; DATABASE_URL holds a password."""
    files = {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*.*")}
    git_commit(folder, files, "Add the migrations", at="2026-11-20T10:00:00+00:00")
    monkeypatch.setenv("DATABASE_URL", owner)
    assert run("apply", "--yes").exit_code == 0
    return folder


def tables(database_url: str) -> list[tuple[str, ...]]:
    """Every table and column of the public schema, backout's history and audit rows."""
    with psycopg.connect(database_url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2"
        ).fetchall()
        if not any(t == "schema_migrations" for t, _ in columns):
            return columns
        history = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        audit = conn.execute(
            "SELECT action, migration, outcome FROM backout_audit_event ORDER BY id"
        ).fetchall()
    return columns + history + audit


def test_a_role_that_cannot_create_the_history_table_is_told_which_grant_is_missing(
    folder: Path, database_url: str, role: str
) -> None:
    before = tables(database_url)

    result = run("apply", "--yes", "--database-url", with_role(database_url, role, PASSWORD))

    line = one_line(result, ExitCode.FAILED, "permission denied for schema public")
    assert "GRANT USAGE, CREATE ON SCHEMA public" in line
    assert tables(database_url) == before


def test_a_role_that_cannot_read_the_history_is_told_which_grant_is_missing(
    project: Path, database_url: str, role: str
) -> None:
    before = tables(database_url)
    url = with_role(database_url, role, PASSWORD)

    status = run("status", "--database-url", url)
    rollback = run("rollback", "006", "--yes", "--database-url", url)

    for result in (status, rollback):
        line = one_line(result, ExitCode.FAILED, "permission denied for table schema_migrations")
        assert "ON TABLE schema_migrations" in line
    assert tables(database_url) == before


@pytest.mark.parametrize("option", ["--lock-timeout", "--statement-timeout"])
def test_an_absurd_timeout_is_a_usage_error_and_nothing_runs(
    project: Path, database_url: str, option: str
) -> None:
    before = tables(database_url)

    result = run("rollback", "006", "--yes", option, "9999999h")

    one_line(result, ExitCode.USAGE, option)
    assert tables(database_url) == before


@pytest.mark.parametrize("reason", ["", "   \t "], ids=["empty", "blank"])
def test_an_emergency_without_a_reason_is_refused_before_anything_is_opened(
    project: Path, database_url: str, reason: str
) -> None:
    before = tables(database_url)

    result = run("emergency", "006", "--reason", reason, "--yes", "--no-rehearsal")

    one_line(result, ExitCode.USAGE, "--reason is empty")
    assert not (project / "ops").exists()
    assert tables(database_url) == before


def test_a_postmortems_folder_that_is_a_file_stops_the_emergency_before_the_rollback(
    project: Path, database_url: str
) -> None:
    (project / "ops").mkdir()
    (project / "ops/postmortems").write_text("not a folder\n")
    before = tables(database_url)

    result = run("emergency", "006", "--reason", "claims stalled", "--yes", "--no-rehearsal")

    one_line(result, ExitCode.REFUSED, "pre-flight: ops/postmortems is a file")
    assert tables(database_url) == before


def test_an_unwritable_postmortems_folder_stops_the_emergency_before_the_rollback(
    project: Path, database_url: str
) -> None:
    (project / "ops/postmortems").mkdir(parents=True)
    before = tables(database_url)

    with unwritable(project / "ops/postmortems"):
        result = run("emergency", "006", "--reason", "claims stalled", "--yes", "--no-rehearsal")

    one_line(result, ExitCode.REFUSED, "pre-flight: ops/postmortems is not writable")
    assert tables(database_url) == before


def test_a_backups_folder_that_is_a_file_stops_the_emergency_before_the_rollback(
    project: Path, database_url: str
) -> None:
    (project / ".backout").mkdir()
    (project / ".backout/backups").write_text("not a folder\n")
    before = tables(database_url)

    result = run("emergency", "006", "--reason", "claims stalled", "--yes", "--no-rehearsal")

    one_line(result, ExitCode.REFUSED, "pre-flight: .backout/backups is a file")
    assert tables(database_url) == before


def test_a_url_given_as_an_argument_by_mistake_is_quoted_without_its_password(
    folder: Path,
) -> None:
    result = run("status", f"postgresql://ada:{PASSWORD}@db.example.com/app")

    assert result.exit_code == ExitCode.USAGE
    assert "postgresql://ada:***@db.example.com/app" in result.stderr
    assert PASSWORD not in result.stderr
