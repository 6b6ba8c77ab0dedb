"""``backout rollback --targets/--fleet``: a planned rollback on every target of a fleet.

Each target gets exactly what a one-database rollback does (the lock, the timeouts, the
history and audit rows in one transaction, the schema check), its audit row naming the fleet
and the target, in waves after a canary. The survey, the approval and the confirmation come
once, before anything changes; ``--dry-run`` runs the blast radius and the rolled-back dry run
on every target and goes on after a failing one (nothing is ever committed).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg

from backout.config import Environment, Settings
from backout.database.connection import Target, connect
from backout.database.history import fleet_rollback as fleet_rollback_event
from backout.database.runner import Reporter, RunOptions
from backout.errors import ExitCode, RefusedError
from backout.fleets.targets import Fleet
from backout.fleets.waves import plan_waves
from backout.migrations.catalog import Catalog, Entry, resolved_entry
from backout.migrations.file import MigrationFile
from backout.operations.approval import Operator, check_approval
from backout.operations.dry_run import FAILED, failed
from backout.operations.fleet.engine import Engine, Status, TargetOutcome, one_line, roll_out
from backout.operations.fleet.model import (
    DONE_WORDS,
    DRY_RUN_WORDS,
    FleetConfirm,
    FleetPlan,
    FleetResult,
    left_out,
)
from backout.operations.fleet.survey import Earlier, Presence, Survey, survey
from backout.operations.operation import Context, Outcome
from backout.operations.rehearsal import gate
from backout.operations.rollback import Asked, plan_rollback, rollback_entry


@dataclass(frozen=True)
class FleetRollback:
    """One fleet rollback: the project, the migration, how it was asked, by whom."""

    settings: Settings
    fleet: Fleet
    operator: Operator
    catalog: Catalog
    entry: Entry
    migration: MigrationFile
    asked: Asked
    options: RunOptions

    def context(self, target: Target) -> Context:
        """A target's context: confirmed once for the fleet, its progress on the fleet's line."""
        return Context(self.settings, target, self.operator, self.options)

    def details(self, target: Target) -> dict[str, Any]:
        return {"fleet": self.fleet.name, "target": target.name}


def fleet_rollback(
    settings: Settings,
    fleet: Fleet,
    operator: Operator,
    reference: str,
    asked: Asked,
    *,
    options: RunOptions | None = None,
    confirm: FleetConfirm = lambda _: True,
    report: Reporter = lambda _: None,
    cwd: Path | None = None,
) -> FleetResult:
    """Roll back ``reference`` on every target of ``fleet`` where it is applied, in waves."""
    catalog, entry = resolved_entry(settings, reference, cwd)
    job = FleetRollback(
        settings, fleet, operator, catalog, entry, entry.read(), asked, options or RunOptions()
    )
    found = survey(
        settings,
        catalog,
        job.migration,
        fleet.targets,
        earlier=_done_earlier(job),
        concurrency=fleet.concurrency,
    )
    done_earlier = any(f.presence is Presence.EARLIER for f in found.found)
    if found.canary is None and (found.to_run() or not done_earlier):
        found.refuse_none_applied(job.migration.name, fleet.name)
    waves = plan_waves(found.to_run(), fleet.waves)
    if waves and not asked.dry_run:
        check_fleet_approval(fleet, operator)
        job = _rehearsed(job, waves[0][0])
        _confirm(job, found, waves, confirm)
    engine: Engine[Target] = Engine(
        work=lambda target: _on_target(job, target),
        name_of=lambda target: target.name,
        concurrency=fleet.concurrency,
        stop_on_failure=not asked.dry_run,
        progress=report,
        words=DRY_RUN_WORDS if asked.dry_run else DONE_WORDS,
    )
    rollout = roll_out(engine, waves)
    outcomes = left_out(found.left_out())
    return FleetResult(fleet, job.migration.name, "rollback", asked.dry_run, rollout, outcomes)


def _done_earlier(job: FleetRollback) -> Earlier:
    def earlier(_: Target, conn: psycopg.Connection[Any]) -> str | None:
        table = job.settings.audit_table
        found = fleet_rollback_event(conn, table, job.migration.name, job.fleet.name)
        if found is None:
            return None
        event, at = found
        return f"rolled back earlier by this fleet's rollback (audit event {event}, {at:%H:%M:%S})"

    return earlier


def check_fleet_approval(fleet: Fleet, operator: Operator) -> None:
    """A fleet configured with ``require_approval`` needs ``--approved-by`` and ``--reason``
    from someone else, once for all its targets."""
    if fleet.require_approval:
        environment = Environment(fleet.name, "", require_approval=True)
        check_approval(Target("", environment), operator)


def _rehearsed(job: FleetRollback, canary: Target) -> FleetRollback:
    """A fleet that requires approval has the rollback rehearsed once, on a scratch database
    holding what the canary has, as one database whose environment requires approval does
    (``--skip-rehearsal REASON`` skips it); the result goes in every target's approval row."""
    if not job.fleet.require_approval:
        return job
    environment = Environment(job.fleet.name, "", require_approval=True)
    target = Target(canary.url, environment, label=canary.name)
    change = ("rollback", [job.migration])
    with connect(canary.url, autocommit=True, lock_timeout=job.options.lock_timeout) as conn:
        operator = gate(job.settings, conn, target, job.operator, change, job.asked.skip_rehearsal)
    return replace(job, operator=operator)


def _confirm(
    job: FleetRollback,
    found: Survey,
    waves: tuple[tuple[Target, ...], ...],
    confirm: FleetConfirm,
) -> None:
    """The plan on the canary (its refusals first), then the fleet's one confirmation."""
    canary = waves[0][0]
    plan = plan_rollback(job.context(canary), job.catalog, job.entry, job.asked)
    fleet_plan = FleetPlan(
        "rollback",
        job.fleet,
        job.migration.name,
        plan.confirm_word,
        plan.steps[0][1],
        tuple(tuple(t.name for t in wave) for wave in waves),
        left_out(found.left_out()),
        plan.blast,
        plan.warnings,
    )
    if not confirm(fleet_plan):
        raise RefusedError("not confirmed", hint="nothing was changed")


def _on_target(job: FleetRollback, target: Target) -> TargetOutcome:
    """What one target's rollback (or dry run) did; a refusal or failure raises."""
    asked = replace(job.asked, details=job.details(target))
    outcome = rollback_entry(job.context(target), job.catalog, job.entry, asked)
    details = _details(outcome, dry_run=asked.dry_run)
    if asked.dry_run:
        lines = list(outcome.done)
        if failed(lines):
            first = next(line for line in lines if line.startswith(FAILED))
            reason = f"dry run failed: {one_line(first.removeprefix(FAILED))}"
            return TargetOutcome(target.name, Status.FAILED, reason, ExitCode.FAILED, None, details)
        return TargetOutcome(target.name, Status.DONE, details=details)
    bad = [r for r in outcome.smoke if not r.ok]
    if bad:
        reason = f"rolled back, but {bad[0].describe()}"
        return TargetOutcome(target.name, Status.FAILED, reason, ExitCode.PROBLEMS, None, details)
    said = f"schema check: {outcome.schema_check}" if outcome.schema_check else ""
    return TargetOutcome(target.name, Status.DONE, said, details=details)


def _details(outcome: Outcome, *, dry_run: bool) -> dict[str, Any]:
    plan = outcome.plan
    return {
        "schema_check": outcome.schema_check,
        "dry_run": list(outcome.done) if dry_run else None,
        "smoke_checks": [{"name": r.name, "ok": r.ok, "detail": r.detail} for r in outcome.smoke],
        "warnings": list(plan.warnings),
        "blast_radius": plan.blast.to_json() if plan.blast is not None else None,
    }
