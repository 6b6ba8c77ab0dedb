"""Option groups: a dataclass of options declared once, spelled out by typer in each command
that takes it, in the place of the parameter, and handed to the command built."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Annotated

import pytest
import typer

from backout.cli.lazy import load
from backout.cli.options import Connection, JsonFlag, Limits, Locks, option_groups


@option_groups
def connect(
    ctx: typer.Context,
    *,
    connection: Connection,
    limits: Limits,
    json_output: JsonFlag = False,
) -> tuple[Connection, Limits, bool]:
    """Connect."""
    return connection, limits, json_output


def test_the_groups_fields_take_the_place_of_the_parameter() -> None:
    parameters = inspect.signature(connect).parameters

    assert list(parameters) == [
        "ctx", "database_url", "env", "lock_wait", "lock_timeout", "lock_retries",
        "max_queued", "statement_timeout", "json_output",
    ]  # fmt: skip
    assert parameters["lock_wait"].default == "30s"


def test_the_command_receives_the_groups_built() -> None:
    got = connect(
        ctx=None,
        database_url="postgresql:///x",
        env=None,
        lock_wait="1s",
        lock_timeout="2s",
        lock_retries=0,
        max_queued=3,
        statement_timeout=None,
        json_output=True,
    )

    assert got == (Connection("postgresql:///x", None), Limits("1s", "2s", 0, 3, None), True)


def test_typer_shows_each_option_in_place_with_its_help() -> None:
    command = load("connect", f"{__name__}:connect")

    options = {p.name: p for p in command.params}
    assert list(options) == [
        "database_url", "env", "lock_wait", "lock_timeout", "lock_retries",
        "max_queued", "statement_timeout", "json_output",
    ]  # fmt: skip
    assert options["lock_retries"].opts == ["--lock-retries"]
    assert getattr(options["env"], "help", None) == "A configured environment: its URL and rules."


@dataclass(frozen=True)
class Needed:
    reason: Annotated[str, typer.Option("--reason", help="Why.")]


@option_groups
def why(*, needed: Needed, locks: Locks) -> tuple[Needed, Locks]:
    return needed, locks


def test_a_field_without_a_default_is_a_required_option() -> None:
    parameters = inspect.signature(why).parameters

    assert parameters["reason"].default is inspect.Parameter.empty
    assert "statement_timeout" not in parameters
    assert why(reason="r", lock_wait="30s", lock_timeout="5s", lock_retries=5, max_queued=5) == (
        Needed("r"),
        Locks(),
    )


def test_a_group_that_repeats_a_parameter_is_refused() -> None:
    def twice(*, connection: Connection, env: str | None = None) -> None:
        del connection, env

    with pytest.raises(TypeError, match="repeats a parameter"):
        option_groups(twice)
