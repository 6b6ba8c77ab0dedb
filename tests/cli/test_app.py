"""The application around the commands: ``--help``, ``--version``, and how a mistyped command
is answered, all without loading any command."""

from __future__ import annotations

from backout import __version__
from backout.cli.commands import COMMANDS
from backout.errors import ExitCode
from tests.runner import run


def test_help_documents_every_exit_code() -> None:
    result = run("--help")

    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "Exit codes: 0 ok; 1 the operation failed; 2 usage or bad input; 3 a check" in text
    assert "4 refused by a safety rule; 5 could not get a lock in time; 130 interrupted." in text


def test_help_lists_every_command_with_the_first_words_of_its_help() -> None:
    result = run("--help")

    text = " ".join(result.stdout.replace("│", " ").split())
    for name, lazy in COMMANDS.items():
        assert f"{name} {' '.join(lazy.help.split()[:4])}" in text


def test_version() -> None:
    result = run("--version")

    assert (result.exit_code, result.stdout, result.stderr) == (
        ExitCode.OK,
        f"backout {__version__}\n",
        "",
    )


def test_a_mistyped_command_is_a_usage_error_naming_the_closest_one() -> None:
    result = run("stauts")

    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == (
        "backout: error: no such command 'stauts'; did you mean 'status'?; see backout --help\n"
    )
