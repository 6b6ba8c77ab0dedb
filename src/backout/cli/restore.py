"""``backout restore <incident>``: put an incident's backup back, parents before children."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from backout.cli import render
from backout.cli.application import state
from backout.cli.fleet import fleet_of, one_database_or_fleet
from backout.cli.fleet_restore import Chosen, fleet_restore, items_json
from backout.cli.operation import operator_of, target_of
from backout.cli.options import (
    Connection,
    DryRun,
    Fleet,
    JsonFlag,
    LockWait,
    Yes,
    option_groups,
)
from backout.database.connection import MAX_LOCK_WAIT, parse_limit
from backout.errors import ExitCode, RefusedError
from backout.operations import restore as core

IncidentArg = Annotated[str, typer.Argument(help="The incident id (INC-YYYYMMDD-NN).")]
TargetName = Annotated[
    str | None,
    typer.Option("--target", metavar="NAME", help="A fleet incident: restore this target."),
]
AllTargets = Annotated[
    bool,
    typer.Option("--all", help="A fleet incident: restore every backed-up target, one by one."),
]


@option_groups
def restore(
    ctx: typer.Context,
    incident: IncidentArg,
    *,
    connection: Connection,
    fleet_options: Fleet,
    target_name: TargetName = None,
    all_targets: AllTargets = False,
    dry_run: DryRun = False,
    yes: Yes = False,
    lock_wait: LockWait = "30s",
    json_output: JsonFlag = False,
) -> int:
    """Put an incident's backed-up rows back in one transaction, parents before children."""
    st = state(ctx)
    wait = parse_limit(lock_wait, option="--lock-wait", maximum=MAX_LOCK_WAIT)
    fleet = fleet_of(ctx, fleet_options)
    if fleet is not None or target_name is not None or all_targets:
        one_database_or_fleet(connection, fleet)
        chosen = Chosen(fleet, target_name, all_targets)
        return fleet_restore(st.settings, incident, chosen, wait, yes, dry_run, json_output)
    target = target_of(ctx, connection)
    planned = core.dry_run(st.settings, target, incident)
    if dry_run:
        _echo(planned, dry_run=True, json_output=json_output, where=st.settings.relative)
        return ExitCode.OK
    _confirm(planned, yes)
    done = core.restore(
        st.settings,
        target,
        incident,
        operator=operator_of(None, None).name,
        lock_wait=wait,
        now=lambda: datetime.now(UTC),
    )
    _echo(done, dry_run=False, json_output=json_output, where=st.settings.relative)
    return ExitCode.OK


def _confirm(planned: core.Restore, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise RefusedError(
            f"restoring the backup of {planned.incident} needs confirmation and this is not a "
            "terminal",
            hint="pass --yes to confirm (--dry-run shows what it would do)",
        )
    typer.echo("\n".join(_lines(planned, dry_run=True)), err=True)
    typed = typer.prompt(f"Type {planned.incident} to restore", err=True)
    if str(typed).strip().upper() != planned.incident:
        raise RefusedError("not confirmed; nothing was restored")


def _lines(result: core.Restore, *, dry_run: bool) -> list[str]:
    head = "would restore" if dry_run else "restored"
    out = [f"{head} the backup of {result.incident}, in this order (parents first):"]
    for n, step in enumerate(result.steps, start=1):
        rows = step.item.rows if dry_run else step.restored
        kind = (
            "rows"
            if not step.item.key
            else "rows updated, columns "
            + ", ".join(c for c in step.item.columns if c not in step.item.key)
        )
        out.append(f"  {n}. {step.item.table}: {rows} {kind} (from {step.item.file})")
    if not dry_run:
        out.append(f"audit event {result.audit_event}")
        out.append(
            f"timeline: {result.postmortem}"
            if result.postmortem
            else "timeline: the postmortem is not in this working tree; add the entry on its branch"
        )
    return out


def _echo(result: core.Restore, *, dry_run: bool, json_output: bool, where: Any) -> None:
    if not json_output:
        typer.echo("\n".join(_lines(result, dry_run=dry_run)))
        return
    data = {
        "incident": result.incident,
        "folder": where(result.folder),
        "dry_run": dry_run,
        "items": items_json(result.steps),
        "audit_event": result.audit_event,
        "postmortem": where(result.postmortem) if result.postmortem else None,
    }
    typer.echo(render.to_json(data))
