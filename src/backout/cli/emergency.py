"""``backout emergency``: parse, call :func:`backout.operations.emergency.emergency`, render."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from backout.cli import render, render_emergency
from backout.cli.application import state
from backout.cli.fleet import fleet_of
from backout.cli.operation import (
    confirmable,
    confirmer,
    operator_of,
    progress,
    run_options,
    target_of,
)
from backout.cli.options import (
    AcceptDamage,
    ApprovedBy,
    Connection,
    JsonFlag,
    Limits,
    MigrationArg,
    RollbackFile,
    Rollout,
    UseCurrentRollback,
    Yes,
    option_groups,
)
from backout.errors import ExitCode
from backout.operations import emergency as procedure
from backout.operations.dry_run import failed

if TYPE_CHECKING:
    from backout.operations.backup import BackupItem
    from backout.operations.backup import Progress as BackupProgress


@dataclass(frozen=True)
class Incident:
    """What broke, how badly, and who owns the postmortem."""

    reason: Annotated[
        str, typer.Option("--reason", metavar="TEXT", help="Why: what broke (required).")
    ]
    severity: Annotated[
        str, typer.Option("--severity", metavar="SEVERITY", help="SEV1 to SEV4.")
    ] = "SEV2"
    owner: Annotated[
        str | None,
        typer.Option("--owner", metavar="NAME", help="Who owns the postmortem (default: you)."),
    ] = None
    incident_id: Annotated[
        str | None,
        typer.Option(
            "--incident",
            metavar="ID",
            help="With --shard: the incident every shard joins (default: the same id in every "
            "job of one commit and UTC day).",
        ),
    ] = None


@dataclass(frozen=True)
class Steps:
    """Which steps of the procedure run, and with what."""

    rollback_file: RollbackFile = None
    no_backup: Annotated[
        bool, typer.Option("--no-backup", help="Skip the backup (needs --backup-waiver).")
    ] = False
    backup_waiver: Annotated[
        str | None,
        typer.Option("--backup-waiver", metavar="REASON", help="Why no backup is needed."),
    ] = None
    no_git: Annotated[bool, typer.Option("--no-git", help="Do not commit anything.")] = False
    assume_applied: Annotated[
        bool,
        typer.Option("--assume-applied", help="The database has no history: it is applied."),
    ] = False
    use_current_rollback: UseCurrentRollback = False
    skip_rehearsal: Annotated[
        str | None,
        typer.Option(
            "--skip-rehearsal",
            metavar="REASON",
            help="Do not rehearse on a scratch database first; the reason goes in the incident.",
        ),
    ] = None
    no_rehearsal: Annotated[  # the spelling before 0.x, kept for scripts that use it
        bool, typer.Option("--no-rehearsal", hidden=True)
    ] = False
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Rehearse in a rolled-back transaction; write nothing."),
    ] = False
    accept_damage: AcceptDamage = False


def request(migration: str, incident: Incident, steps: Steps) -> procedure.Request:
    return procedure.Request(
        reference=migration,
        reason=incident.reason,
        severity=incident.severity.upper(),
        owner=incident.owner,
        rollback_file=steps.rollback_file,
        no_backup=steps.no_backup,
        backup_waiver=steps.backup_waiver,
        no_git=steps.no_git,
        dry_run=steps.dry_run,
        assume_applied=steps.assume_applied,
        use_current_rollback=steps.use_current_rollback,
        rehearse=not (steps.no_rehearsal or steps.skip_rehearsal),
        skipped_rehearsal=steps.skip_rehearsal,
        accept_damage=steps.accept_damage,
        incident=incident.incident_id,
    )


@option_groups
def emergency(
    ctx: typer.Context,
    migration: MigrationArg,
    *,
    incident: Incident,
    steps: Steps,
    connection: Connection,
    yes: Yes = False,
    approved_by: ApprovedBy = None,
    limits: Limits,
    rollout: Rollout,
    json_output: JsonFlag = False,
) -> int:
    """Roll back a migration that broke production, open its incident, start the fix-forward."""
    st = state(ctx)
    fleet = fleet_of(ctx, rollout)
    if fleet is not None:
        from backout.cli.fleet_rollout import emergency_across  # only for a fleet

        asked = request(migration, incident, steps)
        return emergency_across(
            ctx, fleet, asked, connection, approved_by, limits, yes, json_output
        )
    target = target_of(ctx, connection)
    if not steps.dry_run:  # before the rehearsal and the blast radius, which take seconds
        confirmable(yes, f"the emergency rollback of {migration}", target.name)
    with backup_bar() as bar:
        result = procedure.emergency(
            st.settings,
            target,
            operator_of(approved_by, incident.reason),
            request(migration, incident, steps),
            options=run_options(limits),
            confirm=confirmer(yes),
            report=progress,
            cwd=st.cwd,
            backup_progress=bar,
        )
    if json_output:
        typer.echo(render.to_json(render_emergency.emergency_json(result, st.settings.relative)))
    else:
        now = datetime.now(UTC)
        typer.echo(render_emergency.emergency_text(result, st.settings.relative, now))
    return ExitCode.FAILED if result.dry_run and failed(result.dry_run_lines) else ExitCode.OK


@contextmanager
def backup_bar() -> Iterator[BackupProgress | None]:
    """A progress bar on stderr for each object the backup streams, on a terminal only; it
    appears with the first bytes, after any confirmation prompt."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    bar = Progress(
        TextColumn("backup {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(item: BackupItem, written: int) -> None:
        if not tasks:
            bar.start()
        if item.file not in tasks:
            tasks[item.file] = bar.add_task(item.table, total=None)
        bar.update(tasks[item.file], completed=written)

    try:
        yield update
    finally:
        bar.stop()
