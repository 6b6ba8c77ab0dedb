"""Commands imported when they run, so that ``backout --version``, ``--help`` and ``lint`` start
without loading the database driver, git or the postmortem libraries.

A :class:`LazyGroup` knows each command by name, by where it is defined (``"module:attribute"``:
a function with typer annotations, or a :class:`typer.Typer` of subcommands) and by its help.
The module is imported when the command is run or its own ``--help`` is asked for; the group's
``--help`` lists every command from the help it was given, importing none.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    from typer._click import Command, Context, HelpFormatter


@dataclass(frozen=True)
class Lazy:
    """Where a command is defined (``"module:attribute"``) and its help, as its docstring says."""

    target: str
    help: str


def load(name: str, target: str) -> Command:
    """Import ``target`` and build the click command typer would build for it in a group."""
    module, _, attribute = target.partition(":")
    defined = getattr(importlib.import_module(module), attribute)
    # Built inside a holder, as in any group: a typer of subcommands then gets no completion
    # options of its own.
    holder = typer.Typer(add_completion=False)
    if not isinstance(defined, typer.Typer):
        holder.command(name=name)(defined)
        return typer.main.get_command(holder)
    holder.add_typer(defined, name=name)
    group = typer.main.get_command(holder)
    assert isinstance(group, TyperGroup)
    return group.commands[name]


class LazyCommands(MutableMapping[str, "Command"]):
    """A group's commands by name, in the order given: each is loaded on first access."""

    def __init__(self, lazy: Mapping[str, Lazy], loaded: Mapping[str, Command]) -> None:
        from backout.cli.metavars import tidy

        self._lazy = lazy
        self._loaded = {name: tidy(command) for name, command in loaded.items()}
        self._names = dict.fromkeys([*lazy, *loaded])

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded:
            from backout.cli.metavars import tidy

            self._loaded[name] = tidy(load(name, self._lazy[name].target))
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._loaded[name] = command
        self._names[name] = None

    def __delitem__(self, name: str) -> None:
        del self._names[name]
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def summary(self, name: str) -> Command | None:
        """The command if it is loaded, else a stand-in that carries only its name and help."""
        if name in self._loaded:
            return self._loaded[name]
        if name in self._lazy and name in self._names:
            return TyperCommand(name=name, help=self._lazy[name].help)
        return None


class LazyGroup(TyperGroup):
    """A typer group whose commands are listed in :attr:`lazy` and imported on first use."""

    lazy: ClassVar[Mapping[str, Lazy]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._commands = LazyCommands(self.lazy, self.commands)
        self.commands = self._commands
        self._listing = False

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self._commands)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if self._listing:
            return self._commands.summary(cmd_name)
        return self._commands.get(cmd_name)

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        # The help lists every command with its help; the stand-ins make that import none.
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
