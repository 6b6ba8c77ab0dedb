"""What a new user meets first: each command's ``--help`` in words rather than Python types, the
same name for the same idea everywhere, typer's own errors in backout's one-line form, and
``--json`` wherever output is printed."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer

from backout.cli import app
from backout.cli.operation import prompt
from backout.database.connection import Target
from backout.errors import ExitCode
from backout.migrations.file import read_migration
from backout.operations.operation import Plan
from tests.runner import Result, run
from tests.samples import SAMPLES


def words(result: Result) -> str:
    """The help's text without its boxes, one space between words."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", result.stdout).split())


INTERNALS = ("<bool>", "<list", "<int range>", "<str>", "<path>", "[x>=", "<=x<=")


def every_command() -> list[list[str]]:
    """``[]`` for ``backout`` itself, then each command and each subcommand, as argv."""
    found: list[list[str]] = [[]]
    for name, command in typer.main.get_command(app).commands.items():  # type: ignore[attr-defined]
        found.append([name])
        found += [[name, sub] for sub in getattr(command, "commands", {})]
    return found


@pytest.mark.parametrize("argv", every_command(), ids=" ".join)
def test_help_names_what_each_option_takes_without_python_types(argv: list[str]) -> None:
    result = run(*argv, "--help")

    assert result.exit_code == ExitCode.OK
    assert [word for word in INTERNALS if word in result.stdout] == []


def test_arguments_are_written_in_capitals_in_every_usage_line() -> None:
    usages = {
        " ".join(argv): next(
            line for line in run(*argv, "--help").stdout.splitlines() if "Usage" in line
        )
        for argv in every_command()
    }

    assert "{MIGRATION}" in usages["rollback"]
    assert "{INCIDENT} {STATUS}" in usages["postmortems set-status"]
    assert [u for u in usages.values() if any(c.islower() for c in u.split("[OPTIONS]")[-1])] == []


def test_every_command_and_subcommand_takes_json() -> None:
    missing = [argv for argv in every_command()[1:] if "--json" not in run(*argv, "--help").stdout]

    assert missing in ([], [["postmortems"]])


def test_skipping_the_rehearsal_is_spelled_the_same_in_apply_rollback_and_emergency() -> None:
    helps = {name: run(name, "--help").stdout for name in ("apply", "rollback", "emergency")}

    assert all("--skip-rehearsal" in text and "REASON" in text for text in helps.values())
    assert "--no-rehearsal" not in helps["emergency"]  # still accepted, no longer shown


def test_lint_check_and_digest_spell_the_output_format_alike() -> None:
    lint = run("lint", "--help").stdout
    check = run("postmortems", "check", "--help").stdout
    digest = run("postmortems", "digest", "--help").stdout

    assert (bool(re.search(r"--format +-f ", lint)), "text|json|github" in lint) == (True, True)
    assert (bool(re.search(r"--format +-f ", check)), "text|json|github" in check) == (True, True)
    assert (bool(re.search(r"--format +-f ", digest)), "markdown|json" in digest) == (True, True)


def test_a_missing_option_is_backouts_one_line_error_with_the_usage_exit_code() -> None:
    result = run("emergency", "005")

    assert (result.exit_code, result.stdout) == (ExitCode.USAGE, "")
    assert result.stderr == (
        "backout: error: missing option '--reason'; see backout emergency --help\n"
    )


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["status", "--bogus"], "no such option: --bogus; see backout status --help"),
        (
            ["lint", "-f", "xml"],
            "invalid value for '--format' / '-f': 'xml' is not one of 'text', 'json', 'github'; "
            "see backout lint --help",
        ),
        (["postmortems", "digest", "--format", "html"], "'html' is not one of 'markdown', 'json'"),
    ],
)
def test_every_usage_error_is_one_line(argv: list[str], said: str) -> None:
    result = run(*argv)

    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("backout: error: ")
    assert said in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_bad_due_within_suggests_the_examples_its_help_gives(tmp_path: Path) -> None:
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n')
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        result = run("postmortems", "list", "--due-within", "abc")

    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == (
        "backout: error: --due-within 'abc' is not a duration; use e.g. 24h, 7d or 2w\n"
    )
    assert "Only a deadline within this time: 24h, 7d." in words(
        run("postmortems", "list", "--help")
    )


def test_baseline_dry_run_says_what_it_lists() -> None:
    shown = words(run("baseline", "--help"))

    assert "List what would be marked as applied; change nothing." in shown
    assert "Show what would run" not in shown


@pytest.fixture
def samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(SAMPLES, tmp_path / "migrations")
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n')
    monkeypatch.chdir(tmp_path)
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_rollback_print_sql_with_json_prints_the_statements_as_json(samples: Path) -> None:
    plain = run("rollback", "006", "--print-sql")
    shown = run("rollback", "006", "--print-sql", "--json")

    assert shown.exit_code == ExitCode.OK
    printed: dict[str, Any] = json.loads(shown.stdout)
    assert printed["migration"] == "006"
    assert "".join(f"{s['sql']};\n" for s in printed["statements"]) == plain.stdout
    assert all(isinstance(s["line"], int) for s in printed["statements"])


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["rollback", "006", "--lock-retries", "101"], "'--lock-retries': 101 is more than 100"),
        (["rollback", "006", "--max-queued", "-1"], "'--max-queued': -1 is less than 0"),
        (["apply", "--lock-retries", "many"], "'--lock-retries': 'many' is not a whole number"),
        (["apply", "--max-queued", "2.5"], "'--max-queued': '2.5' is not a whole number"),
        (
            ["rollback", "006", "--targets", "fleet.txt", "--concurrency", "0"],
            "'--concurrency': 0 is less than 1",
        ),
    ],
)
def test_a_count_outside_what_its_help_says_is_refused_in_words(
    samples: Path, argv: list[str], said: str
) -> None:
    result = run(*argv)

    assert (result.exit_code, result.stdout) == (ExitCode.USAGE, "")
    assert (
        result.stderr == f"backout: error: invalid value for {said}; see backout {argv[0]} --help\n"
    )


def test_the_bounds_a_count_help_gives_are_accepted(samples: Path) -> None:
    plain = run("rollback", "006", "--print-sql")
    result = run("rollback", "006", "--print-sql", "--lock-retries", "100", "--max-queued", "0")

    assert (result.exit_code, result.stdout) == (ExitCode.OK, plain.stdout)


def test_the_confirmation_prompt_reads_as_english() -> None:
    migration = read_migration(SAMPLES / "005_backfill_events_impact_score.sql")
    target = Target("postgresql://db.example/app")

    def plan(action: str) -> Plan:
        return Plan(action, target, ((migration, ()),))

    assert prompt(plan("emergency")) == (
        f"Type 005 to roll back 005_backfill_events_impact_score on {target.name}"
    )
    assert prompt(plan("rollback")).startswith("Type 005 to roll back 005_backfill")
    assert prompt(plan("apply")).startswith("Type 005 to apply up to 005_backfill")
