"""How options and arguments read in ``--help``: a word for what each takes, never a type.

typer shows each parameter's Python type (``<bool>``, ``<list[Path]>``, ``<int range>
[0<=x<=100]``) and writes required arguments in lower case next to upper-case ones. :func:`tidy`
rewrites a built click command once: a flag shows nothing after its name, an option shows the
metavar it was declared with or one for its type (``TEXT``, ``PATH``, ``N``), an argument shows
its name in capitals, and a range is left to the option's own help. Only the display changes:
typer checks types and ranges with validators built before this runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from typer.core import TyperArgument, TyperGroup, TyperOption

if TYPE_CHECKING:
    from typer._click import Command, Context, Parameter

# What an option without a declared metavar takes, by the type typer would have shown.
_BY_TYPE = {"str": "TEXT", "path": "PATH", "Path": "PATH", "int": "N", "float": "NUMBER"}


class _Argument(TyperArgument):
    """An argument whose help shows its name and no type."""

    def display_type_rich(self, ctx: Context) -> str | None:
        return None


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
    if isinstance(param, TyperArgument):
        if param.metavar is None:
            param.metavar = (param.name or "value").upper()
        # Only the help changes: the class adds no state, it overrides one display method.
        param.__class__ = _Argument
        return
    if not isinstance(param, TyperOption):
        return
    param.min = param.max = None  # the help says the range in words
    if param.is_flag:
        param.metavar = ""
    elif param.metavar is None:
        shown = param.display_type(ctx).strip("<>")
        element = shown.removeprefix("list[").removesuffix("]")
        if "|" in element:  # the choices, as they are typed
            param.metavar = element
        else:
            param.metavar = _BY_TYPE.get(element.removesuffix(" range"), element.upper())
