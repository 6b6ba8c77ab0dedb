"""Lifecycle commands: ``status``, ``apply``, ``baseline``, ``rollback``. Each parses, calls one
core function and renders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from backout.cli import render, render_fleet_status, render_operations
from backout.cli.application import State, state
from backout.cli.fleet import fleet_of, one_database_or_fleet
from backout.cli.operation import (
    confirmer,
    echo_outcome,
    operator_of,
    progress,
    run_options,
    target_of,
)
from backout.cli.options import (
    AcceptDamage,
    ApprovedBy,
    Connection,
    DryRun,
    Fleet,
    JsonFlag,
    Limits,
    Locks,
    MigrationArg,
    Reason,
    RollbackFile,
    Rollout,
    SkipRehearsal,
    To,
    UseCurrentRollback,
    Yes,
    option_groups,
)
from backout.config import Settings
from backout.errors import ExitCode
from backout.fleets.targets import Fleet as FleetTargets
from backout.operations import apply as apply_operation
from backout.operations import rollback as planned_rollback
from backout.operations import status as status_operation
from backout.operations.dry_run import failed
from backout.operations.fleet import status as fleet_status_operation


@option_groups
def status(
    ctx: typer.Context,
    *,
    connection: Connection,
    fleet_options: Fleet,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Exit 3 when anything is pending, modified, missing, damaged or dirty "
            "(on any target of a fleet).",
        ),
    ] = False,
    json_output: JsonFlag = False,
) -> int:
    """Each migration's state: applied, pending, modified, missing, damaged or rolled back.
    Read-only."""
    settings = state(ctx).settings
    fleet = fleet_of(ctx, fleet_options)
    if fleet is not None:
        one_database_or_fleet(connection, fleet)
        return _fleet_status(settings, fleet, check=check, json_output=json_output)
    states = status_operation.status(settings, target_of(ctx, connection))
    if json_output:
        typer.echo(render.to_json(render_operations.status_json(states, settings.relative)))
    else:
        typer.echo(render_operations.status_text(states, settings.relative))
    problems = {"pending", "modified", "missing", "damaged", "dirty"}
    return ExitCode.PROBLEMS if check and any(s.state in problems for s in states) else ExitCode.OK


def _fleet_status(
    settings: Settings, fleet: FleetTargets, *, check: bool, json_output: bool
) -> int:
    """``status`` across a fleet: one table, the drift in one line; see
    :func:`backout.operations.fleet.status.exit_code` for the exit."""
    result = fleet_status_operation.fleet_status(settings, fleet)
    if json_output:
        typer.echo(render.to_json(render_fleet_status.fleet_status_json(result, settings.relative)))
    else:
        text = render_fleet_status.fleet_status_text(result, settings.relative, check=check)
        typer.echo(text)
    return fleet_status_operation.exit_code(result, check=check)


@option_groups
def apply(
    ctx: typer.Context,
    *,
    to: To = None,
    reapply: Annotated[
        list[str] | None,
        typer.Option(
            "--reapply", metavar="MIGRATION", help="Allow re-applying this rolled-back migration."
        ),
    ] = None,
    connection: Connection,
    yes: Yes = False,
    dry_run: DryRun = False,
    approved_by: ApprovedBy = None,
    reason: Reason = None,
    limits: Limits,
    skip_rehearsal: SkipRehearsal = None,
    json_output: JsonFlag = False,
) -> int:
    """Apply pending migrations in order, each in one transaction with its history row."""
    st = state(ctx)
    outcome = apply_operation.apply(
        st.settings,
        target_of(ctx, connection),
        operator_of(approved_by, reason),
        to=to,
        reapply=reapply or (),
        dry_run=dry_run,
        options=run_options(limits),
        confirm=confirmer(yes),
        report=progress,
        cwd=st.cwd,
        skip_rehearsal=skip_rehearsal,
    )
    return echo_outcome(outcome, dry_run=dry_run, json_output=json_output)


@option_groups
def baseline(
    ctx: typer.Context,
    *,
    to: To = None,
    connection: Connection,
    yes: Yes = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="List what would be marked as applied; change nothing."),
    ] = False,
    approved_by: ApprovedBy = None,
    reason: Reason = None,
    locks: Locks,
    json_output: JsonFlag = False,
) -> int:
    """Mark pending migrations as applied without running them (a database migrated by hand)."""
    st = state(ctx)
    outcome = apply_operation.baseline(
        st.settings,
        target_of(ctx, connection),
        operator_of(approved_by, reason),
        to=to,
        dry_run=dry_run,
        options=run_options(locks),
        confirm=confirmer(yes),
        cwd=st.cwd,
    )
    return echo_outcome(outcome, dry_run=dry_run, json_output=json_output)


@option_groups
def rollback(
    ctx: typer.Context,
    migration: MigrationArg,
    *,
    rollback_file: RollbackFile = None,
    use_current_rollback: UseCurrentRollback = False,
    print_sql: Annotated[
        bool, typer.Option("--print-sql", help="Only print the SQL that would run.")
    ] = False,
    connection: Connection,
    yes: Yes = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Run it in a transaction that is always rolled back."),
    ] = False,
    approved_by: ApprovedBy = None,
    reason: Reason = None,
    limits: Limits,
    skip_rehearsal: SkipRehearsal = None,
    accept_damage: AcceptDamage = False,
    rollout: Rollout,
    json_output: JsonFlag = False,
) -> int:
    """Roll back one applied migration with its documented SQL (a planned, non-incident one)."""
    st = state(ctx)
    if print_sql:
        return _print_sql(st, migration, rollback_file, json_output=json_output)
    asked = planned_rollback.Asked(
        rollback_file, use_current_rollback, dry_run, accept_damage, skip_rehearsal
    )
    if (fleet := fleet_of(ctx, rollout)) is not None:
        from backout.cli.fleet_rollout import rollback_across  # only for a fleet

        who = operator_of(approved_by, reason)
        return rollback_across(
            ctx, fleet, migration, asked, connection, who, limits, yes, json_output
        )
    outcome = planned_rollback.rollback_as_asked(
        st.settings,
        target_of(ctx, connection),
        operator_of(approved_by, reason),
        migration,
        asked,
        options=run_options(limits),
        confirm=confirmer(yes),
        report=progress,
        cwd=st.cwd,
    )
    code = echo_outcome(outcome, dry_run=dry_run, json_output=json_output)
    return ExitCode.FAILED if dry_run and failed(outcome.done) else code


def _print_sql(st: State, migration: str, rollback_file: Path | None, *, json_output: bool) -> int:
    """``rollback --print-sql``: the statements it would run, read from no database."""
    statements = planned_rollback.rollback_sql(st.settings, migration, rollback_file, st.cwd)
    if json_output:
        shown = [render.statement_json(s) for s in statements]
        typer.echo(render.to_json({"migration": migration, "statements": shown}))
    else:
        typer.echo(render.statements_sql(statements), nl=False)
    return ExitCode.OK
