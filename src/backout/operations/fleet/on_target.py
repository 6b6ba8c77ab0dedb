"""One target of a fleet emergency: the one-database steps, on the fleet's incident.

Each target runs the emergency's own steps (check it is safe, blast radius, the migration
lock, the backup into its own subfolder, the rollback with its history and audit rows, the
schema check, smoke checks), in a :class:`~backout.operations.emergency.model.Run` of its own
whose incident is the target's view of the fleet's: its timeline entries carry its name.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from backout.database.connection import Target, connect
from backout.errors import ExitCode
from backout.operations.dry_run import FAILED, failed
from backout.operations.emergency.model import Produced, Run, Step
from backout.operations.emergency.procedure import run_steps
from backout.operations.emergency.steps import (
    back_up_here,
    check_the_schema,
    measure_the_blast_radius,
    plan_the_backup,
    release_the_lock,
    roll_back,
    safety_plan,
    smoke_checks,
    take_the_lock,
    try_on_the_target,
)
from backout.operations.fleet.engine import Status, TargetOutcome, failure, one_line
from backout.operations.fleet.incident import FleetIncident


@dataclass
class Commits:
    """The targets' rollbacks that committed, as (when, audit event), by target: this run's
    and, for a re-run, the earlier runs' (the first one sets the review deadline)."""

    now: dict[str, tuple[datetime, int | None]] = field(default_factory=dict)
    earlier: dict[str, tuple[datetime, int | None]] = field(default_factory=dict)

    def first(self) -> tuple[datetime, int | None] | None:
        both = [*self.earlier.values(), *self.now.values()]
        return min(both, key=lambda c: c[0]) if both else None


def check_safe_here(run: Run) -> Produced:
    return Produced(plan=safety_plan(run))


def back_up_unless_waived(run: Run) -> Produced:
    """The target's backup into its subfolder (the waiver is the fleet's, noted once)."""
    return Produced() if run.request.no_backup else back_up_here(run)


TARGET_STEPS: tuple[Step, ...] = (
    Step("check it is safe", check_safe_here),
    Step("measure the blast radius", measure_the_blast_radius),
    Step("take the migration lock", take_the_lock, failure="waiting for the migration lock"),
    Step("back up", back_up_unless_waived, failure="backup"),
    Step("roll back", roll_back, failure="rollback"),
    Step("check the schema", check_the_schema, after_commit=True),
    Step("smoke checks", smoke_checks, after_commit=True),
    Step("release the lock", release_the_lock, after_commit=True),
)
"""What each target goes through: the emergency's own steps, without those done once."""

TARGET_DRY_RUN: tuple[Step, ...] = (
    Step("check it is safe", check_safe_here),
    Step("measure the blast radius", measure_the_blast_radius),
    Step("plan the backup", plan_the_backup),
    Step("dry run on the target", try_on_the_target),
)


def target_run(fleet_run: Run, target: Target, resources: ExitStack) -> Run:
    """A run of the fleet's emergency on one target, on a connection of its own."""
    ctx = replace(fleet_run.ctx, target=target, confirm=lambda _: True, report=lambda _: None)
    conn = resources.enter_context(
        connect(target.url, autocommit=True, lock_timeout=ctx.options.lock_timeout)
    )
    made = fleet_run.made
    return Run(
        ctx,
        fleet_run.request,
        fleet_run.catalog,
        fleet_run.entry,
        fleet_run.migration,
        fleet_run.statements,
        conn,
        resources,
        fleet_run.now,
        fleet=fleet_run.fleet,
        audit_details={"fleet": fleet_run.fleet, "target": target.name},
        made=Produced(scratch_rehearsal=made.scratch_rehearsal),
    )


def roll_back_target(
    fleet_run: Run, writer: FleetIncident, commits: Commits, target: Target
) -> TargetOutcome:
    """One target's rollback, its start, outcome and duration on the fleet's timeline and its
    line of the Targets table."""
    view, started = writer.view(target.name), time.monotonic()
    view.note(fleet_run.now(), "started")
    writer.update_line(target.name, outcome="running", detail="")
    backups = fleet_run.backup_folder / target.name
    try:
        with ExitStack() as resources:
            run = target_run(fleet_run, target, resources)
            run.made, run.backups = replace(run.made, incident=view), backups
            run_steps(run, TARGET_STEPS)
    except Exception as exc:
        outcome = replace(failure(target.name, exc), seconds=time.monotonic() - started)
        view.note(fleet_run.now(), f"FAILED after {outcome.seconds:.1f} s: {outcome.reason}")
        writer.update_line(target.name, outcome="failed", detail=outcome.reason)
        return outcome
    return _rolled_back(run, writer, commits, started)


def _rolled_back(
    run: Run, writer: FleetIncident, commits: Commits, started: float
) -> TargetOutcome:
    made, name, seconds = run.made, run.ctx.target.name, time.monotonic() - started
    assert made.rolled_back_at is not None
    commits.now[name] = (made.rolled_back_at, made.audit_event)
    where = run.ctx.settings.relative(made.backup_folder) if made.backup_folder else None
    run.note(f"rolled back in {seconds:.1f} s (audit event {made.audit_event})")
    check = f"schema check: {made.schema_check}" if made.schema_check else ""
    said = "; ".join([check, *run.warnings]).strip("; ")
    writer.update_line(
        name,
        outcome="rolled back",
        detail=said,
        audit_event=made.audit_event,
        backup=str(where) if where else None,
        seconds=round(seconds, 1),
    )
    bad = [s for s in made.smoke or () if not s.ok]
    details = _details(run, where)
    if bad:
        reason = f"rolled back, but {bad[0].describe()}"
        return TargetOutcome(name, Status.FAILED, reason, ExitCode.PROBLEMS, seconds, details)
    return TargetOutcome(name, Status.DONE, said, ExitCode.OK, seconds, details)


def _details(run: Run, where: str | Path | None) -> dict[str, Any]:
    made = run.made
    return {
        "audit_event": made.audit_event,
        "rolled_back_at": made.rolled_back_at.isoformat() if made.rolled_back_at else None,
        "backup": str(where) if where else None,
        "schema_check": made.schema_check,
        "smoke_checks": [
            {"name": r.name, "ok": r.ok, "detail": r.detail} for r in made.smoke or ()
        ],
        "warnings": list(run.warnings),
    }


def dry_run_target(fleet_run: Run, target: Target) -> TargetOutcome:
    """One target's dry run: its blast radius, its backup plan and its statements, in a
    transaction always rolled back; nothing is written anywhere."""
    with ExitStack() as resources:
        run = target_run(fleet_run, target, resources)
        run_steps(run, TARGET_DRY_RUN)
    made = run.made
    lines = list(made.dry_run_lines or ())
    details = {
        "dry_run": lines,
        "blast_radius": made.blast.to_json() if made.blast is not None else None,
        "backup_items": len(made.backup_plan.items) if made.backup_plan else None,
    }
    if failed(lines):
        first = next(line for line in lines if line.startswith(FAILED))
        reason = f"dry run failed: {one_line(first.removeprefix(FAILED))}"
        return TargetOutcome(target.name, Status.FAILED, reason, ExitCode.FAILED, None, details)
    return TargetOutcome(target.name, Status.DONE, details=details)
