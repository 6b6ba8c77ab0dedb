"""``backout init`` and ``backout guard``: parse, call the core (backout.project), render."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from backout.cli import render
from backout.cli.application import state
from backout.cli.migrations import LintFormat, echo_report
from backout.cli.options import DatabaseUrl, DryRun, JsonFlag
from backout.errors import ExitCode
from backout.project.init import Action, Change, Options, Plan, prepare, write


class Ci(StrEnum):
    GITHUB = "github"


def init(
    ctx: typer.Context,
    ci: Annotated[
        Ci | None, typer.Option("--ci", help="Write a CI workflow: github (GitHub Actions).")
    ] = None,
    pre_commit: Annotated[
        bool, typer.Option("--pre-commit", help="Add backout's hooks to .pre-commit-config.yaml.")
    ] = False,
    database_url: DatabaseUrl = None,
    dry_run: DryRun = False,
    json_output: JsonFlag = False,
) -> None:
    """Set a repository up for backout: its settings, the backups ignore line, the postmortems
    folder, and optionally a CI workflow and pre-commit hooks. Writes only what is missing."""
    url = database_url or os.environ.get("DATABASE_URL") or None
    if url:
        from backout.database.connection import checked_url

        url = checked_url(url, "--database-url" if database_url else "DATABASE_URL")
    options = Options(ci=ci.value if ci else None, pre_commit=pre_commit)
    plan = prepare(state(ctx).cwd, database_url=url, options=options)
    if not dry_run:
        write(plan.detected.root, plan.to_write)
    if json_output:
        typer.echo(render.to_json(_json(plan, dry_run=dry_run)))
        return
    for line in _text(plan, dry_run=dry_run):
        typer.echo(line)


def guard(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Migration files to check (default: every configured folder)."),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="The main branch to compare with (default: origin/HEAD, origin/main, "
            "origin/master, main or master, the first that exists).",
        ),
    ] = None,
    output_format: Annotated[
        LintFormat, typer.Option("--format", "-f", help="text, json or github (annotations).")
    ] = LintFormat.TEXT,
    json_output: JsonFlag = False,
) -> int:
    """Refuse edits to migrations the main branch already holds. Exit 3 when one was changed
    or deleted."""
    from backout.project.guard import guard_project

    settings = state(ctx).settings
    guarded = guard_project(settings, base, paths or ())
    if guarded.base is None and not json_output and output_format is LintFormat.TEXT:
        typer.echo("No main branch to compare with yet: nothing to guard.")
        return ExitCode.OK
    return echo_report(
        guarded.report, output_format, json_output=json_output, display=settings.relative
    )


def _text(plan: Plan, *, dry_run: bool) -> list[str]:
    detected = plan.detected
    lines = [
        f"found {f.path}/ ({f.format}, {f.migrations} migration{'s' * (f.migrations != 1)})"
        for f in detected.folders
    ] or ["found no migration folder: configured migrations/ (backout new writes the first)"]
    if plan.histories is None:
        lines.append("history tables: not looked for (pass --database-url or set DATABASE_URL)")
    for h in plan.histories or ():
        exists = "found" if h.exists else "not created yet"
        lines.append(f"history of {h.folder}/: {h.tool}'s table {h.table} ({exists})")
    lines += [_change_line(c, dry_run=dry_run) for c in plan.changes]
    if not plan.to_write:
        lines.append("Nothing to write: the project is already set up.")
    return lines


def _change_line(change: Change, *, dry_run: bool) -> str:
    if change.action is Action.UNCHANGED:
        return f"unchanged {change.path}: {change.what}"
    verb = "create" if change.action is Action.CREATE else "append to"
    done = "created" if change.action is Action.CREATE else "appended to"
    said = f"would {verb}" if dry_run else done
    return f"{said} {change.path}: {change.what}"


def _json(plan: Plan, *, dry_run: bool) -> dict[str, Any]:
    detected = plan.detected
    return {
        "root": str(detected.root),
        "folders": [
            {"path": f.path, "format": f.format, "migrations": f.migrations}
            for f in detected.folders
        ],
        "postmortems": detected.postmortems,
        "histories": None
        if plan.histories is None
        else [
            {"folder": h.folder, "tool": h.tool, "table": h.table, "exists": h.exists}
            for h in plan.histories
        ],
        "dry_run": dry_run,
        "changes": [
            {"path": c.path, "action": c.action.value, "what": c.what} for c in plan.changes
        ],
    }
