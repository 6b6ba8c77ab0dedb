"""``backout verify``: rehearse rollbacks on a scratch database; parse, call the core, render."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from backout.cli import render
from backout.cli.application import state
from backout.cli.options import JsonFlag
from backout.config import Settings
from backout.database.connection import connect, redact
from backout.database.scratch import scratch_database
from backout.errors import ExitCode, UsageError
from backout.migrations.catalog import Entry, project_catalog
from backout.operations import verify as rehearsal


def verify(
    ctx: typer.Context,
    migrations: Annotated[
        list[str] | None,
        typer.Argument(help="Verify these (and every migration before them in their folder)."),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Verify every migration.")] = False,
    scratch_database_url: Annotated[
        str | None,
        typer.Option(
            "--scratch-database-url",
            metavar="URL",
            help="A server to create (and drop) the scratch database on "
            "(default: the embedded PostgreSQL).",
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> int:
    """Apply, roll back and apply again each migration on a scratch database, comparing the
    schema each time. Exit 3 when a rollback leaves something behind or fails."""
    st = state(ctx)
    entries = _entries(st.settings, st.cwd, migrations or [], every=all_)
    with (
        scratch_database(scratch_database_url) as url,
        connect(url, autocommit=True) as conn,
        _bar(len(entries)) as progress,
    ):
        report = rehearsal.verify(st.settings, conn, entries, progress=progress)
    where = redact(scratch_database_url) if scratch_database_url else "the embedded PostgreSQL"
    if json_output:
        typer.echo(render.to_json(_json(report)))
    else:
        typer.echo(_text(report, where))
    return ExitCode.PROBLEMS if report.failed else ExitCode.OK


def _entries(settings: Settings, cwd: Path, migrations: list[str], *, every: bool) -> list[Entry]:
    """The migrations to verify: those named and the ones before them, or all of them."""
    catalog = project_catalog(settings)
    if migrations and every:
        raise UsageError("give migrations or --all, not both")
    entries = _chosen(catalog.entries, [catalog.resolve(m, cwd) for m in migrations])
    catalog.refuse_duplicates(dict.fromkeys(e.folder for e in entries))
    if not entries:
        raise UsageError("there are no migrations to verify", hint="`backout status` lists them")
    return entries


def _chosen(everything: tuple[Entry, ...], named: list[Entry]) -> list[Entry]:
    """All entries, or those up to the last named one of each folder (they build on them)."""
    if not named:
        return list(everything)
    last: dict[Path, int] = {}
    for entry in named:
        position = everything.index(entry)
        last[entry.folder] = max(last.get(entry.folder, -1), position)
    return [e for i, e in enumerate(everything) if e.folder in last and i <= last[e.folder]]


@contextmanager
def _bar(total: int) -> Iterator[rehearsal.Progress | None]:
    """A progress bar on stderr, on a terminal only."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("verify {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=total)

        def update(done: int, _: int, name: str) -> None:
            bar.update(task, completed=done, description=name)

        yield update


def _text(report: rehearsal.Report, where: str) -> str:
    out = []
    for v in report.verdicts:
        out.append(f"{v.outcome:<12} {v.migration}" + (f"  ({v.ms} ms)" if v.ms else ""))
        out += [f"    {problem}" for problem in v.problems()]
    counts: dict[str, int] = {}
    for v in report.verdicts:
        counts[v.outcome] = counts.get(v.outcome, 0) + 1
    summary = ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
    out.append(f"\nVerified {len(report.verdicts)} migration(s) on {where}: {summary}.")
    return "\n".join(out)


def _json(report: rehearsal.Report) -> dict[str, Any]:
    return {
        "ok": not report.failed,
        "migrations": [
            {
                "name": v.migration,
                "outcome": v.outcome,
                "error": v.error,
                "left_behind": [c.describe() for c in v.left_behind],
                "not_reapplied": [c.describe() for c in v.not_reapplied],
                "ms": v.ms,
                "schema_before": v.schema_before,
            }
            for v in report.verdicts
        ],
    }
