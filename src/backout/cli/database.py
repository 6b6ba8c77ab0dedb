"""Lifecycle commands: ``status``, ``apply``, ``baseline``, ``rollback``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from backout.cli import render
from backout.cli.app import app, state
from backout.cli.options import (
    ApprovedBy,
    DatabaseUrl,
    DryRun,
    EnvName,
    JsonFlag,
    LockRetries,
    LockTimeout,
    LockWait,
    Reason,
    SkipRehearsal,
    StatementTimeout,
    Yes,
    confirmer,
    echo_outcome,
    operator_of,
    progress,
    run_options,
    target_of,
)
from backout.errors import ExitCode
from backout.operations import apply as lifecycle_apply
from backout.operations import rollback as planned_rollback
from backout.operations import status as lifecycle_status


@app.command()
def status(
    ctx: typer.Context,
    database_url: DatabaseUrl = None,
    env: EnvName = None,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 3 when anything is pending, modified or missing.")
    ] = False,
    json_output: JsonFlag = False,
) -> int:
    """Each migration's state: applied, pending, modified, missing or rolled back. Read-only."""
    settings = state(ctx).settings
    states = lifecycle_status.status(settings, target_of(ctx, database_url, env))
    if json_output:
        typer.echo(render.to_json(render.status_json(states, settings.relative)))
    else:
        typer.echo(render.status_text(states, settings.relative))
    problems = {"pending", "modified", "missing"}
    return ExitCode.PROBLEMS if check and any(s.state in problems for s in states) else ExitCode.OK


@app.command()
def apply(
    ctx: typer.Context,
    to: Annotated[str | None, typer.Option("--to", help="Stop after this migration.")] = None,
    reapply: Annotated[
        list[str] | None,
        typer.Option("--reapply", help="Allow re-applying this rolled-back migration."),
    ] = None,
    database_url: DatabaseUrl = None,
    env: EnvName = None,
    yes: Yes = False,
    dry_run: DryRun = False,
    approved_by: ApprovedBy = None,
    reason: Reason = None,
    lock_wait: LockWait = "30s",
    lock_timeout: LockTimeout = "5s",
    lock_retries: LockRetries = 5,
    statement_timeout: StatementTimeout = None,
    skip_rehearsal: SkipRehearsal = None,
    json_output: JsonFlag = False,
) -> int:
    """Apply pending migrations in order, each in one transaction with its history row."""
    st = state(ctx)
    outcome = lifecycle_apply.apply(
        st.settings,
        target_of(ctx, database_url, env),
        operator_of(approved_by, reason),
        to=to,
        reapply=reapply or (),
        dry_run=dry_run,
        options=run_options(lock_wait, lock_timeout, lock_retries, statement_timeout),
        confirm=confirmer(yes),
        report=progress,
        cwd=st.cwd,
        skip_rehearsal=skip_rehearsal,
    )
    return echo_outcome(outcome, dry_run=dry_run, json_output=json_output)


@app.command()
def baseline(
    ctx: typer.Context,
    to: Annotated[str | None, typer.Option("--to", help="Stop after this migration.")] = None,
    database_url: DatabaseUrl = None,
    env: EnvName = None,
    yes: Yes = False,
    dry_run: DryRun = False,
    approved_by: ApprovedBy = None,
    reason: Reason = None,
    lock_wait: LockWait = "30s",
    lock_timeout: LockTimeout = "5s",
    lock_retries: LockRetries = 5,
    json_output: JsonFlag = False,
) -> int:
    """Mark pending migrations as applied without running them (a database migrated by hand)."""
    st = state(ctx)
    outcome = lifecycle_apply.baseline(
        st.settings,
        target_of(ctx, database_url, env),
        operator_of(approved_by, reason),
        to=to,
        dry_run=dry_run,
        options=run_options(lock_wait, lock_timeout, lock_retries, None),
        confirm=confirmer(yes),
        cwd=st.cwd,
    )
    return echo_outcome(outcome, dry_run=dry_run, json_output=json_output)


@app.command()
def rollback(
    ctx: typer.Context,
    migration: Annotated[str, typer.Argument(help="Version (004), name or path.")],
    rollback_file: Annotated[
        Path | None, typer.Option("--rollback-file", help="Run this SQL file instead.")
    ] = None,
    use_current_rollback: Annotated[
        bool,
        typer.Option("--use-current-rollback", help="Accept a ROLLBACK section edited since."),
    ] = False,
    print_sql: Annotated[
        bool, typer.Option("--print-sql", help="Only print the SQL that would run.")
    ] = False,
    database_url: DatabaseUrl = None,
    env: EnvName = None,
    yes: Yes = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Run it in a transaction that is always rolled back."),
    ] = False,
    approved_by: ApprovedBy = None,
    reason: Reason = None,
    lock_wait: LockWait = "30s",
    lock_timeout: LockTimeout = "5s",
    lock_retries: LockRetries = 5,
    statement_timeout: StatementTimeout = None,
    skip_rehearsal: SkipRehearsal = None,
    json_output: JsonFlag = False,
) -> int:
    """Roll back one applied migration with its documented SQL (a planned, non-incident one)."""
    st = state(ctx)
    if print_sql:
        statements = planned_rollback.rollback_sql(st.settings, migration, rollback_file, st.cwd)
        typer.echo(render.statements_sql(statements), nl=False)
        return ExitCode.OK
    outcome = planned_rollback.rollback(
        st.settings,
        target_of(ctx, database_url, env),
        operator_of(approved_by, reason),
        migration,
        rollback_file=rollback_file,
        use_current_rollback=use_current_rollback,
        dry_run=dry_run,
        options=run_options(lock_wait, lock_timeout, lock_retries, statement_timeout),
        confirm=confirmer(yes),
        report=progress,
        cwd=st.cwd,
        skip_rehearsal=skip_rehearsal,
    )
    return echo_outcome(outcome, dry_run=dry_run, json_output=json_output)
