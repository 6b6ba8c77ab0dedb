"""The command table and the lazy group: every command is listed with the help its docstring
gives, and a command's module is imported only when the command itself is wanted."""

from __future__ import annotations

from typing import Annotated

import pytest
import typer

from backout.cli import app
from backout.cli.commands import COMMANDS
from backout.cli.lazy import Lazy, LazyCommands, LazyGroup, load


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_table_gives_each_command_the_help_of_the_function_that_defines_it(
    name: str,
) -> None:
    command = load(name, COMMANDS[name].target)

    assert (command.name, command.help) == (name, COMMANDS[name].help)


def test_the_group_holds_the_table_s_commands_in_its_order() -> None:
    group = typer.main.get_command(app)

    assert isinstance(group, LazyGroup)
    assert list(group.commands) == list(COMMANDS)


NOWHERE = {"ghost": Lazy("tests.cli.no_such_module:ghost", "Haunt the help.")}


def test_listing_and_summarising_import_nothing_until_a_command_is_wanted() -> None:
    commands = LazyCommands(NOWHERE, {})

    assert list(commands) == ["ghost"]
    summary = commands.summary("ghost")
    assert summary is not None
    assert (summary.name, summary.help) == ("ghost", "Haunt the help.")
    assert commands.summary("nothing") is None
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        commands["ghost"]


def greet(
    name: Annotated[str, typer.Argument(help="Whom.")],
    loud: Annotated[bool, typer.Option("--loud", help="Shout.")] = False,
) -> None:
    """Say hello."""
    typer.echo(f"hello {name}".upper() if loud else f"hello {name}")


def test_a_loaded_command_is_the_one_typer_builds_and_is_kept() -> None:
    commands = LazyCommands({"greet": Lazy(f"{__name__}:greet", "Say hello.")}, {})

    greeting = commands["greet"]

    assert greeting is commands["greet"]
    assert [p.name for p in greeting.params] == ["name", "loud"]
    assert commands.summary("greet") is greeting


def test_commands_added_later_come_after_the_table_and_can_be_removed() -> None:
    commands = LazyCommands(NOWHERE, {})
    greeting = load("greet", f"{__name__}:greet")

    commands["greet"] = greeting
    assert list(commands) == ["ghost", "greet"]
    del commands["ghost"]
    assert (list(commands), len(commands), commands.summary("ghost")) == (["greet"], 1, None)
