"""``backout emergency``: parse, call :func:`backout.operations.emergency.emergency`, render."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from backout.cli import render
from backout.cli.app import app, state
from backout.cli.options import (
    ApprovedBy,
    DatabaseUrl,
    EnvName,
    JsonFlag,
    LockRetries,
    LockTimeout,
    LockWait,
    StatementTimeout,
    Yes,
    confirmer,
    operator_of,
    progress,
    run_options,
    target_of,
)

if TYPE_CHECKING:
    from backout.operations.backup import BackupItem
    from backout.operations.backup import Progress as BackupProgress


@app.command()
def emergency(
    ctx: typer.Context,
    migration: Annotated[str, typer.Argument(help="Version (004), name or path.")],
    reason: Annotated[str, typer.Option("--reason", help="Why: what broke (required).")],
    severity: Annotated[str, typer.Option("--severity", help="SEV1 to SEV4.")] = "SEV2",
    owner: Annotated[
        str | None, typer.Option("--owner", help="Who owns the postmortem (default: you).")
    ] = None,
    rollback_file: Annotated[
        Path | None, typer.Option("--rollback-file", help="Run this SQL file instead.")
    ] = None,
    no_backup: Annotated[
        bool, typer.Option("--no-backup", help="Skip the backup (needs --backup-waiver).")
    ] = False,
    backup_waiver: Annotated[
        str | None, typer.Option("--backup-waiver", help="Why no backup is needed.")
    ] = None,
    no_git: Annotated[bool, typer.Option("--no-git", help="Do not commit anything.")] = False,
    assume_applied: Annotated[
        bool,
        typer.Option("--assume-applied", help="The database has no history: it is applied."),
    ] = False,
    use_current_rollback: Annotated[
        bool,
        typer.Option("--use-current-rollback", help="Accept a ROLLBACK section edited since."),
    ] = False,
    no_rehearsal: Annotated[
        bool,
        typer.Option("--no-rehearsal", help="Do not rehearse on a scratch database first."),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Rehearse in a rolled-back transaction; write nothing."),
    ] = False,
    database_url: DatabaseUrl = None,
    env: EnvName = None,
    yes: Yes = False,
    approved_by: ApprovedBy = None,
    lock_wait: LockWait = "30s",
    lock_timeout: LockTimeout = "5s",
    lock_retries: LockRetries = 5,
    statement_timeout: StatementTimeout = None,
    json_output: JsonFlag = False,
) -> None:
    """Roll back a migration that broke production, open its incident, start the fix-forward."""
    from backout.operations import emergency as procedure  # loaded by this command only

    st = state(ctx)
    with backup_bar() as bar:
        result = procedure.emergency(
            st.settings,
            target_of(ctx, database_url, env),
            operator_of(approved_by, reason),
            procedure.Request(
                reference=migration,
                reason=reason,
                severity=severity.upper(),
                owner=owner,
                rollback_file=rollback_file,
                no_backup=no_backup,
                backup_waiver=backup_waiver,
                no_git=no_git,
                dry_run=dry_run,
                assume_applied=assume_applied,
                use_current_rollback=use_current_rollback,
                rehearse=not no_rehearsal,
            ),
            options=run_options(lock_wait, lock_timeout, lock_retries, statement_timeout),
            confirm=confirmer(yes),
            report=progress,
            cwd=st.cwd,
            backup_progress=bar,
        )
    if json_output:
        typer.echo(render.to_json(render.emergency_json(result, st.settings.relative)))
    else:
        typer.echo(render.emergency_text(result, st.settings.relative))


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
