"""The typer application, its global options, and the per-invocation state commands share.

The commands themselves are listed in :mod:`backout.cli.commands` and imported when they run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated

import typer

from backout import __version__
from backout.cli.commands import COMMANDS
from backout.cli.lazy import LazyGroup
from backout.config import Overrides, Settings, load_settings
from backout.errors import EXIT_CODES_HELP


class Commands(LazyGroup):
    lazy = COMMANDS


app = typer.Typer(
    name="backout",
    cls=Commands,
    help="Safe, documented rollbacks and incident records for raw-SQL PostgreSQL migrations.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@dataclass
class State:
    """What the global options say; settings are loaded once, when a command first asks."""

    overrides: Overrides = field(default_factory=Overrides)
    cwd: Path = field(default_factory=Path.cwd)

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.cwd, os.environ, self.overrides)


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    if not isinstance(obj, State):
        obj = ctx.find_root().obj = State()
    return obj


def _version(value: bool) -> None:
    if value:
        typer.echo(f"backout {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="Configuration file (default: found above the working "
            "directory; env BACKOUT_CONFIG).",
        ),
    ] = None,
    migrations_dir: Annotated[
        list[Path] | None,
        typer.Option(
            "--migrations-dir",
            metavar="DIR",
            help="A migrations folder; repeat for several (env BACKOUT_MIGRATIONS).",
        ),
    ] = None,
    postmortems_dir: Annotated[
        Path | None,
        typer.Option(
            "--postmortems-dir", metavar="DIR", help="Postmortems folder (env BACKOUT_POSTMORTEMS)."
        ),
    ] = None,
    templates_dir: Annotated[
        Path | None,
        typer.Option(
            "--templates-dir", metavar="DIR", help="Templates folder (env BACKOUT_TEMPLATES)."
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Safe, documented rollbacks and incident records for raw-SQL PostgreSQL migrations."""
    ctx.obj = State(
        Overrides(
            config_file=config,
            migrations=tuple(migrations_dir) if migrations_dir else None,
            postmortems=postmortems_dir,
            templates=templates_dir,
        )
    )
