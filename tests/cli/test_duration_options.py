"""``--lock-wait``, ``--lock-timeout``, ``--statement-timeout``, ``--lock-retries`` and
``--max-queued``: a limit of 0 (which PostgreSQL reads as "no limit") or beyond the most backout
allows is a usage error (exit 2) in one line naming the option, before anything is changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from backout.database.connection import MAX_LOCK_WAIT, MAX_STATEMENT_TIMEOUT, parse_limit
from backout.errors import ExitCode, UsageError
from tests.runner import run
from tests.samples import SAMPLES


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    shutil.copytree(SAMPLES, tmp_path / "migrations")
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS"):
        monkeypatch.delenv(name, raising=False)
    assert run("apply", "--yes").exit_code == 0
    return tmp_path


BAD = [
    ("--lock-timeout", "0", "is shorter than 1ms, the least backout allows"),
    ("--lock-timeout", "0ms", "is shorter than 1ms"),
    ("--lock-timeout", "0.4ms", "is shorter than 1ms"),
    ("--lock-timeout", "2h", "is longer than 1h, the most backout allows"),
    ("--lock-timeout", "99999999999999999999h", "is longer than 1h"),
    ("--lock-wait", "0", "is shorter than 1ms"),
    ("--lock-wait", "61m", "is longer than 1h"),
    ("--statement-timeout", "0", "is shorter than 1ms"),
    ("--statement-timeout", "25h", "is longer than 24h"),
    ("--lock-timeout", "soon", "is not a duration"),
]


@pytest.mark.parametrize(("option", "value", "said"), BAD)
@pytest.mark.parametrize("command", ["rollback", "emergency"])
def test_a_limit_of_zero_or_beyond_the_maximum_is_a_usage_error_and_changes_nothing(
    project: Path, database_url: str, command: str, option: str, value: str, said: str
) -> None:
    extra = ["--reason", "claims stalled", "--no-rehearsal"] if command == "emergency" else []

    result = run(command, "006", "--yes", *extra, option, value)

    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert result.stderr.startswith(f"backout: error: {option} {value!r} {said}")
    assert result.stderr.count("\n") == 1
    with psycopg.connect(database_url) as conn:
        versions = conn.execute("SELECT version FROM schema_migrations").fetchall()
        audited = conn.execute("SELECT count(*) FROM backout_audit_event").fetchone()
    assert ("006",) in versions
    assert audited == (6,)  # the six applies, nothing since
    assert not (project / "ops").exists()  # no incident was opened


@pytest.mark.parametrize(
    ("option", "value"),
    [("--lock-retries", "100000"), ("--max-queued", "-1"), ("--max-queued", "100000")],
)
def test_absurd_counts_are_a_usage_error(project: Path, option: str, value: str) -> None:
    result = run("rollback", "006", "--yes", option, value)

    assert result.exit_code == ExitCode.USAGE
    assert option in result.stderr


@pytest.mark.parametrize(
    ("text", "maximum", "seconds"),
    [
        ("1ms", MAX_LOCK_WAIT, 0.001),
        ("500ms", MAX_LOCK_WAIT, 0.5),
        ("5", MAX_LOCK_WAIT, 5.0),
        ("1h", MAX_LOCK_WAIT, 3600.0),
        ("60m", MAX_LOCK_WAIT, 3600.0),
        ("24h", MAX_STATEMENT_TIMEOUT, 86400.0),
    ],
)
def test_limits_within_bounds_are_read_as_seconds(
    text: str, maximum: float, seconds: float
) -> None:
    assert parse_limit(text, option="--x", maximum=maximum) == seconds


def test_a_limit_error_says_what_to_give() -> None:
    with pytest.raises(UsageError) as caught:
        parse_limit("0", option="--lock-timeout", maximum=MAX_LOCK_WAIT)

    assert (
        caught.value.hint == "give a duration between 1ms and 1h, e.g. 5s (0 would mean no limit)"
    )
