"""Authoring commands: ``new``, ``lint`` and ``show``. Each parses, calls the core, renders."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from backout.cli import render
from backout.cli.application import state
from backout.cli.options import JsonFlag, MigrationArg
from backout.config import FORMAT_TOOLS, Settings
from backout.errors import ExitCode
from backout.migrations.authoring import new_migration
from backout.migrations.catalog import project_catalog
from backout.migrations.lint import Report, lint_project


class LintFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    GITHUB = "github"


def echo_report(
    report: Report, output_format: LintFormat, *, json_output: bool, display: render.Display
) -> int:
    """Findings as text, JSON or GitHub annotations; exit 3 when any is an error."""
    if json_output or output_format is LintFormat.JSON:
        typer.echo(render.to_json(render.lint_json(report, display)))
    elif output_format is LintFormat.GITHUB:
        if report.findings:
            typer.echo(render.lint_github(report, display))
    else:
        for line, colour in render.lint_text(report, display):
            typer.secho(line, fg=colour)
    return ExitCode.PROBLEMS if report.errors else ExitCode.OK


def new(
    ctx: typer.Context,
    description: Annotated[str, typer.Argument(help='What the migration does: "add widgets".')],
    folder: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="The migrations folder, when there are several."),
    ] = None,
    phase: Annotated[str, typer.Option(help="The header's Phase.")] = "TODO",
    checklist: Annotated[str, typer.Option(help="The header's Checklist reference.")] = "TODO",
    json_output: JsonFlag = False,
) -> None:
    """Write the next migration file from the template and print its path."""
    st = state(ctx)
    plan = new_migration(
        st.settings, description, cwd=st.cwd, folder=folder, phase=phase, checklist=checklist
    )
    shown = st.settings.relative(plan.path)
    if json_output:
        typer.echo(render.to_json({"path": shown, "version": plan.version, "name": plan.path.stem}))
    else:
        typer.echo(shown)


def lint(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Migration files or folders (default: the configured folders)."),
    ] = None,
    output_format: Annotated[
        LintFormat, typer.Option("--format", "-f", help="text, json or github (annotations).")
    ] = LintFormat.TEXT,
    json_output: JsonFlag = False,
) -> int:
    """Check migration files against the strategy's rules. Exit 3 when any error is found."""
    settings = state(ctx).settings
    report = lint_project(settings, paths or ())
    return echo_report(report, output_format, json_output=json_output, display=settings.relative)


def show(
    ctx: typer.Context,
    migration: MigrationArg,
    json_output: JsonFlag = False,
) -> None:
    """Print a parsed migration: header, forward SQL, the exact rollback SQL, notes, checksums."""
    st = state(ctx)
    parsed = project_catalog(st.settings).resolve(migration, st.cwd).read()
    history = _history(st.settings, parsed.folder, parsed.format)
    if json_output:
        typer.echo(render.to_json(render.migration_json(parsed, st.settings.relative, history)))
    else:
        typer.echo(render.migration_text(parsed, st.settings.relative, history))


def _history(settings: Settings, folder: Path, format_name: str) -> str | None:
    """Whose history table says whether the folder's migrations are applied: the configured
    tool, or, for another tool's format, the one detected when a command connects."""
    configured = settings.histories.get(folder)
    if configured is not None:
        return f"{configured} (configured)"
    if format_name == "strategy":
        return None
    tool = FORMAT_TOOLS.get(format_name, "backout")
    return f"{tool}'s table when the database has it, else backout's (detected on connect)"
