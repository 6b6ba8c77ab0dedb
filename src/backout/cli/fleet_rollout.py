"""``rollback`` and ``emergency`` across a fleet (``--targets``/``--fleet``): the fleet's one
confirmation, the call to the core, the rendering and the exit code (the first failure's)."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from backout.cli import render, render_fleet
from backout.cli.application import state
from backout.cli.fleet import one_database_or_fleet
from backout.cli.operation import confirmable, operator_of, progress, run_options
from backout.cli.options import Connection, Limits
from backout.fleets.targets import Fleet
from backout.operations.approval import Operator
from backout.operations.emergency import Request
from backout.operations.fleet.emergency import fleet_emergency
from backout.operations.fleet.model import FleetConfirm, FleetPlan
from backout.operations.fleet.rollback import fleet_rollback
from backout.operations.rollback import Asked


def fleet_confirmer(yes: bool) -> FleetConfirm:
    """``--yes``; or, on a terminal, the fleet's plan and a typed confirmation; else refuse."""

    def confirm(plan: FleetPlan) -> bool:
        confirmable(yes, f"the {plan.action} of {plan.migration}", f"fleet {plan.fleet.name}")
        if yes:
            return True
        typer.echo(render_fleet.plan_text(plan), err=True)
        typed = typer.prompt(render_fleet.prompt(plan), err=True)
        return str(typed).strip() == plan.confirm_word

    return confirm


def rollback_across(
    ctx: typer.Context,
    fleet: Fleet,
    migration: str,
    asked: Asked,
    connection: Connection,
    operator: Operator,
    limits: Limits,
    yes: bool,
    json_output: bool,
) -> int:
    """``backout rollback MIGRATION --targets/--fleet``."""
    st = state(ctx)
    one_database_or_fleet(connection, fleet)
    if not asked.dry_run:
        confirmable(yes, f"the rollback of {migration}", f"fleet {fleet.name}")
    result = fleet_rollback(
        st.settings,
        fleet,
        operator,
        migration,
        asked,
        options=run_options(limits),
        confirm=fleet_confirmer(yes),
        report=progress,
        cwd=st.cwd,
    )
    if json_output:
        typer.echo(render.to_json(render_fleet.fleet_json(result)))
    else:
        typer.echo("\n".join(render_fleet.targets_text(result)))
    return int(result.exit_code)


def emergency_across(
    ctx: typer.Context,
    fleet: Fleet,
    request: Request,
    connection: Connection,
    approved_by: str | None,
    limits: Limits,
    yes: bool,
    json_output: bool,
) -> int:
    """``backout emergency MIGRATION --targets/--fleet``: one incident for the fleet."""
    st = state(ctx)
    one_database_or_fleet(connection, fleet)
    if not request.dry_run:
        confirmable(yes, f"the emergency rollback of {request.reference}", f"fleet {fleet.name}")
    result = fleet_emergency(
        st.settings,
        fleet,
        operator_of(approved_by, request.reason),
        request,
        options=run_options(limits),
        confirm=fleet_confirmer(yes),
        report=progress,
        cwd=st.cwd,
    )
    if json_output:
        typer.echo(render.to_json(render_fleet.emergency_json(result, st.settings.relative)))
    else:
        now = datetime.now(UTC)
        typer.echo(render_fleet.emergency_text(result, st.settings.relative, now))
    return int(result.exit_code)
