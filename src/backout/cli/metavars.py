"""How options and arguments read in ``--help``: a word for what each takes, never a type.

typer shows each parameter's type (``<str>``, ``<path>``, ``<int range>`` and ``[0<=x<=100]``)
and writes required arguments in lower case next to upper-case ones. :func:`tidy` rewrites a
built click command once: a flag shows nothing after its name, an option shows the metavar it
was declared with or one for its type (``TEXT``, ``PATH``, ``N``, or its choices as they are
typed), an argument shows its name in capitals and no type, and a range is left to the option's
own help. Values are still checked as typer would: an argument keeps its type behind
:class:`_Unshown`, and a number out of its range is refused by :class:`_Bounded`, in words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typer._click.types import IntRange, ParamType
from typer.core import TyperArgument, TyperGroup, TyperOption

if TYPE_CHECKING:
    from collections.abc import Sequence

    from typer._click import Command, Context, Parameter
    from typer._click.shell_completion import CompletionItem

# What an option without a declared metavar takes, by the name of the type typer chose for it.
_BY_TYPE = {"str": "TEXT", "path": "PATH", "int": "N", "int range": "N", "float": "NUMBER"}


class _Argument(TyperArgument):
    """An argument taking several values keeps its ``...`` in the usage line once it has a
    metavar (typer drops it then)."""

    def get_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = super().get_usage_pieces(ctx)
        return pieces if self.nargs == 1 else [f"{piece}..." for piece in pieces]


class _Unshown(ParamType):
    """An argument's type that adds no word to the help (typer writes the type's name beside
    the argument's): the same values are accepted and refused, completed and reported."""

    def __init__(self, shown: ParamType) -> None:
        self.shown = shown
        self.name = shown.name

    def get_metavar(self, param: Parameter, ctx: Context) -> str:
        return ""

    def convert(self, value: Any, param: Parameter | None, ctx: Context | None) -> Any:
        return self.shown.convert(value, param, ctx)

    def split_envvar_value(self, rv: str) -> Sequence[str]:
        return self.shown.split_envvar_value(rv)

    def get_missing_message(self, param: Parameter, ctx: Context | None) -> str | None:
        return self.shown.get_missing_message(param, ctx)

    def shell_complete(
        self, ctx: Context, param: Parameter, incomplete: str
    ) -> list[CompletionItem]:
        return self.shown.shell_complete(ctx, param, incomplete)


class _Bounded(ParamType):
    """A whole number between two bounds, refused in words outside them. Not a range type:
    typer's help writes a range type's bounds (``[0<=x<=100]``); the option's help says them."""

    name = "int"

    def __init__(self, within: IntRange) -> None:
        self.low, self.high = within.min, within.max

    def convert(self, value: Any, param: Parameter | None, ctx: Context | None) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a whole number", param, ctx)
        if self.low is not None and number < self.low:
            self.fail(f"{number} is less than {self.low}", param, ctx)
        if self.high is not None and number > self.high:
            self.fail(f"{number} is more than {self.high}", param, ctx)
        return number


def tidy(command: Command) -> Command:
    """``command`` (and the subcommands it has already built) with help free of Python types."""
    from typer._click import Context

    help_option = command.get_help_option(Context(command))
    for param in [*command.params, *([help_option] if help_option else [])]:
        _tidy(param, Context(command))
    # A group's built subcommands (postmortems'); a lazy group's are tidied as they load.
    if isinstance(command, TyperGroup) and isinstance(command.commands, dict):
        for sub in command.commands.values():
            tidy(sub)
    return command


def _tidy(param: Parameter, ctx: Context) -> None:
    if isinstance(param, TyperArgument) and not isinstance(param, _Argument):
        if param.metavar is None:
            param.metavar = (param.name or "value").upper()
        # Only the help changes: the class adds no state, it overrides one display method.
        param.__class__ = _Argument
        param.type = _Unshown(param.type)
        return
    if not isinstance(param, TyperOption):
        return
    if param.is_flag:
        param.metavar = ""
    elif param.metavar is None:
        shown = param.make_metavar(ctx).strip("<>")
        param.metavar = shown if "|" in shown else _BY_TYPE.get(shown, shown.upper())
    if isinstance(param.type, IntRange) and not param.type.clamp:
        param.type = _Bounded(param.type)
