"""``backout emergency --targets/--fleet``: one incident for a whole fleet.

The emergency's own steps, composed once for the fleet: the survey of where the migration is
applied, then on the canary the safety check, the blast radius, the rehearsal and the
pre-flight, one approval and confirmation, one incident (its environment the fleet's name);
then the rollout, each target through the one-database steps (:mod:`.on_target`) in waves;
then one fix-forward stub, one completed postmortem with one review deadline (from the
first rollback that committed: the canary's) and one incident branch. A re-run of the same
migration on the same fleet continues the unfinished incident with the targets still to do.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from backout.config import Settings
from backout.database.connection import Target, connect
from backout.database.history import incident_rollback
from backout.database.runner import Reporter, RunOptions
from backout.errors import RefusedError, UsageError
from backout.fleets.targets import Fleet
from backout.fleets.waves import plan_waves
from backout.migrations.catalog import resolved_entry
from backout.operations.approval import Operator
from backout.operations.emergency.incident import Clock
from backout.operations.emergency.model import Produced, Request, Run, Step
from backout.operations.emergency.procedure import check_request, failure_note, run_steps
from backout.operations.emergency.steps import (
    check_ahead,
    complete_the_postmortem,
    keep_backups_out_of_git,
    log_the_decision,
    measure_the_blast_radius,
    open_the_incident,
    record_in_git,
    rehearse,
    safety_plan,
    write_the_stub,
)
from backout.operations.fleet.engine import Engine, Rollout, Status, roll_out
from backout.operations.fleet.incident import FleetIncident
from backout.operations.fleet.merge import merge_parts
from backout.operations.fleet.model import (
    DONE_WORDS,
    DRY_RUN_WORDS,
    FleetConfirm,
    FleetEmergencyResult,
    FleetPlan,
    FleetResult,
    RolloutStopped,
    left_out,
)
from backout.operations.fleet.on_target import (
    Commits,
    check_safe_here,
    dry_run_target,
    roll_back_target,
)
from backout.operations.fleet.rollback import check_fleet_approval
from backout.operations.fleet.shard import (
    ShardIncident,
    finish,
    finish_the_part,
    open_the_part,
    parts_about,
    shard_incident_id,
)
from backout.operations.fleet.survey import Earlier, Presence, Survey, survey
from backout.operations.operation import Context, Plan
from backout.operations.rollback import rollback_statements_of
from backout.postmortems.collection import unfinished_incident
from backout.postmortems.deadlines import review_due
from backout.postmortems.model import TargetLine
from backout.postmortems.parts import incidents_with_parts


@dataclass
class FleetState:
    """What the fleet's steps share: the survey, the waves, the commits, the rollout."""

    fleet: Fleet
    found: Survey
    waves: tuple[tuple[Target, ...], ...]
    confirm: FleetConfirm
    report: Reporter
    commits: Commits
    rollout: Rollout | None = None
    incident_id: str | None = None
    """The incident this run continues or, for a shard, joins (None: a new one)."""

    @property
    def finishing(self) -> bool:
        """No target is known to have the migration applied: this re-run only finishes the
        incident (and tries again the targets an earlier run could not reach)."""
        return self.found.canary is None


def fleet_emergency(
    settings: Settings,
    fleet: Fleet,
    operator: Operator,
    request: Request,
    *,
    options: RunOptions | None = None,
    confirm: FleetConfirm = lambda _: True,
    report: Reporter = lambda _: None,
    now: Clock = lambda: datetime.now(UTC),
    cwd: Path | None = None,
) -> FleetEmergencyResult:
    """Run the emergency procedure for ``request.reference`` across ``fleet``."""
    request = check_request(request)
    catalog, entry = resolved_entry(settings, request.reference, cwd)
    migration = entry.read()
    statements = rollback_statements_of(migration, request.rollback_file, missing=UsageError)
    commits = Commits()
    incident_id = None
    if not request.dry_run:
        if fold_parts(settings, fleet, migration.name, request, now, report):
            # read again: the catalog now holds the stub the merge wrote
            catalog, entry = resolved_entry(settings, request.reference, cwd)
        incident_id = _incident_of(settings, fleet, migration.name, request, now)
    earlier = _earlier(settings, incident_id, commits) if incident_id else None
    found = survey(
        settings, catalog, migration, fleet.targets, earlier=earlier, concurrency=fleet.concurrency
    )
    if found.canary is None and incident_id is None:
        found.refuse_none_applied(migration.name, fleet.name)
    waves = plan_waves(found.to_run(), fleet.waves)
    state = FleetState(fleet, found, waves, confirm, report, commits, incident_id=incident_id)
    first = found.canary or found.reachable()
    if first is None:  # a re-run of an incident whose targets left are all out of reach
        found.refuse_none_applied(migration.name, fleet.name)
    ctx = Context(settings, first, operator, options or RunOptions(), report=report)
    stopped = None
    with ExitStack() as resources:
        conn = resources.enter_context(
            connect(first.url, autocommit=True, lock_timeout=ctx.options.lock_timeout)
        )
        run = Run(ctx, request, catalog, entry, migration, statements, conn, resources, now)
        run.fleet, run.databases = fleet.name, max(1, sum(len(w) for w in waves))
        try:
            run_steps(run, _steps(state, request.dry_run))
        except RolloutStopped as exc:
            stopped = exc.message
            if run.made.incident is not None:
                finish(run.made.incident)  # the shard's part says it ended
    return result_of(run, state, stopped)


def fold_parts(
    settings: Settings,
    fleet: Fleet,
    migration: str,
    request: Request,
    now: Clock,
    report: Reporter,
) -> bool:
    """A whole-fleet run first folds the shards' parts it finds for the same migration and
    fleet into their postmortem (which it then continues); whether it found any."""
    if fleet.shard is not None:
        return False
    found = False
    for incident in incidents_with_parts(settings.postmortems):
        if parts_about(settings, incident) == (migration, fleet.name):
            merged = merge_parts(settings, incident, no_git=request.no_git, now=now)
            where = settings.relative(merged.postmortem)
            report(f"the shards' parts of {incident} folded into {where} first")
            found = True
    return found


def _incident_of(
    settings: Settings, fleet: Fleet, migration: str, request: Request, now: Clock
) -> str | None:
    """The incident a shard joins; or the unfinished one a whole-fleet run continues."""
    if fleet.shard is not None:
        return shard_incident_id(settings, migration, fleet.name, request.incident, now())
    if request.incident is not None:
        raise UsageError("--incident is for a shard of a fleet", hint="add --shard I/N")
    unfinished = unfinished_incident(settings.postmortems, migration, fleet.name)
    return unfinished.pm.id if unfinished is not None else None


def _steps(state: FleetState, dry_run: bool) -> tuple[Step, ...]:
    if dry_run:
        return dry_run_steps(state)
    if state.fleet.shard is not None:
        return shard_steps(state)
    return fleet_steps(state)


def _earlier(settings: Settings, incident: str, commits: Commits) -> Earlier:
    """A target an earlier run of the incident rolled back: its audit row says so."""

    def earlier(target: Target, conn: psycopg.Connection[Any]) -> str | None:
        found = incident_rollback(conn, settings.audit_table, incident)
        if found is None:
            return None
        event, details = found
        at = datetime.fromisoformat(str(details["rolled_back_at"]))
        commits.earlier[target.name] = (at, event)
        return f"rolled back earlier in {incident} (audit event {event})"

    return earlier


def fleet_steps(state: FleetState) -> tuple[Step, ...]:
    """The emergency's procedure for a fleet: the one-database steps done once, and the
    rollout in place of the one rollback."""
    return (
        Step("check it is safe", lambda run: _check_safe(run, state)),
        Step("measure the blast radius", _unless_finishing(state, measure_the_blast_radius)),
        Step("rehearse on a scratch database", _unless_finishing(state, rehearse)),
        Step("pre-flight", _unless_finishing(state, check_ahead)),
        Step("confirm", lambda run: _confirm(run, state)),
        Step("open the incident", open_the_incident),
        Step("roll out across the fleet", lambda run: _roll_out(run, state)),
        Step("write the fix-forward stub", write_the_stub, after_commit=True),
        Step("complete the postmortem", complete_the_postmortem, after_commit=True),
        Step("log the decision", log_the_decision, after_commit=True),
        Step("record in git", record_in_git, after_commit=True),
    )


def shard_steps(state: FleetState) -> tuple[Step, ...]:
    """One shard's procedure: the fleet's, with its part in place of the postmortem, and
    nothing of what the merge does once for every shard (stub, deadline, branch)."""
    assert state.incident_id is not None
    assert state.fleet.shard is not None
    incident_id, shard = state.incident_id, state.fleet.shard
    steps = fleet_steps(state)[:5]
    return (
        *steps,
        Step(
            "open the shard's part",
            lambda run: open_the_part(run, incident_id, shard, state.commits),
        ),
        Step("roll out across the fleet", lambda run: _roll_out(run, state)),
        Step("finish the shard's part", finish_the_part, after_commit=True),
    )


def dry_run_steps(state: FleetState) -> tuple[Step, ...]:
    """``--dry-run``: the canary's checks and the rehearsal once, then every target's dry run
    (a failing one does not stop the others: nothing is changed anywhere)."""
    return (
        Step("check it is safe", check_safe_here),
        Step("measure the blast radius", measure_the_blast_radius),
        Step("rehearse on a scratch database", rehearse),
        Step("dry run across the fleet", lambda run: _dry_run(run, state)),
    )


def _unless_finishing(
    state: FleetState, step: Callable[[Run], Produced]
) -> Callable[[Run], Produced]:
    """``step``, unless every target is done and this run only finishes the incident."""
    return lambda run: Produced() if state.finishing else step(run)


def _check_safe(run: Run, state: FleetState) -> Produced:
    if state.finishing:
        return Produced(plan=Plan("emergency", run.ctx.target, ((run.migration, run.statements),)))
    return Produced(plan=safety_plan(run))


def _confirm(run: Run, state: FleetState) -> Produced:
    """The fleet's approval and one confirmation: the waves, the targets left alone, and the
    canary's blast radius (nothing to confirm when only the incident is left to finish)."""
    if state.finishing:
        return Produced()
    check_fleet_approval(state.fleet, run.ctx.operator)
    plan = run.made.plan
    assert plan is not None
    fleet_plan = FleetPlan(
        "emergency",
        state.fleet,
        run.migration.name,
        plan.confirm_word,
        run.statements,
        tuple(tuple(t.name for t in wave) for wave in state.waves),
        left_out(state.found.left_out()),
        plan.blast,
        plan.warnings,
    )
    if not state.confirm(fleet_plan):
        raise RefusedError("not confirmed", hint="nothing was changed")
    return Produced()


def _roll_out(run: Run, state: FleetState) -> Produced:
    """Every target in its wave; the first commit (the canary's) sets the review deadline.
    Targets left to do stay pending, so the incident stays open for a re-run."""
    with FleetIncident(run.incident) as writer:
        _before_the_rollout(run, state, writer)

        def progress(line: str) -> None:  # a wave ended: written before the next starts
            state.report(line)
            writer.note(run.now(), line)
            writer.flush()

        engine: Engine[Target] = Engine(
            work=lambda target: roll_back_target(run, writer, state.commits, target),
            name_of=lambda target: target.name,
            concurrency=state.fleet.concurrency,
            progress=progress,
            words=DONE_WORDS,
        )
        try:
            state.rollout = rollout = roll_out(engine, state.waves)
        except BaseException as exc:  # interrupted: say what committed before it stopped
            writer.note(run.now(), stopped_note(exc, sorted(state.commits.now)))
            raise
        for name in rollout.named(Status.NOT_STARTED):
            writer.update_line(name, outcome="not started", detail="")
    first = state.commits.first()
    if first is None:
        if rollout.failures:
            stopped = RolloutStopped(rollout.failures[0])
            run.note(failure_note("rollout", stopped))
            raise stopped
        return Produced()
    left = [t.name for w in state.waves for t in w if t.name not in state.commits.now]
    if left:
        shown = ", ".join(left[:10]) + (", ..." if len(left) > 10 else "")
        run.left_undone.append(f"roll back on the targets left: {shown}")
    at, event = first
    due = review_due(at, run.ctx.settings.clock_policy)
    return Produced(rolled_back_at=at, review_due=due, audit_event=event)


def stopped_note(exc: BaseException, done: list[str]) -> str:
    """The timeline entry of a rollout stopped by ``exc`` (Ctrl-C, mostly): what committed
    before it stopped, and that a re-run continues. The targets running when it stopped were
    let finish: each one's rollback committed or rolled back as a whole."""
    what = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"FAILED: {exc}"
    shown = ", ".join(done[:10]) + (", ..." if len(done) > 10 else "")
    said = f"rolled back on {len(done)} targets ({shown})" if done else "nothing was rolled back"
    return (
        f"rollout {what}: {said}; the targets already running were let finish; "
        "run the same command again to continue"
    )


def _before_the_rollout(run: Run, state: FleetState, writer: FleetIncident) -> None:
    """The Targets table as the survey found the fleet, the backups folder out of git, and
    the plan on the timeline."""
    earlier = {t.name: t for t in writer.pm.targets}
    lines = [_line_before(f.target.name, f.presence, f.said, earlier) for f in state.found.found]
    writer.change(lambda pm: replace(pm, targets=tuple(lines)))
    for presence, said in ((Presence.NOT_APPLIED, "skipped"), (Presence.EARLIER, "done earlier")):
        names = [f.target.name for f in state.found.found if f.presence is presence]
        if names:
            writer.note(run.now(), f"{said}: {', '.join(names)}")
    if run.request.no_backup:
        waiver = " ".join((run.request.backup_waiver or "").split())
        writer.note(run.now(), f"backup waived on every target: {waiver}")
    elif state.waves:
        keep_backups_out_of_git(run)
        run.incident.record_backup(str(run.ctx.settings.relative(run.backup_folder)))
    count = sum(len(w) for w in state.waves)
    if count:
        writer.note(
            run.now(),
            f"rolling back on {count} targets in {len(state.waves)} waves "
            f"(canary {state.waves[0][0].name}), at most {state.fleet.concurrency} at once",
        )


def _line_before(
    name: str, presence: Presence, said: str, earlier: dict[str, TargetLine]
) -> TargetLine:
    if presence is Presence.EARLIER:
        old = earlier.get(name)
        if old is not None and old.outcome == "rolled back":
            return old
        return TargetLine(name, "rolled back", said)
    if presence is Presence.NOT_APPLIED:
        return TargetLine(name, "skipped", said)
    return TargetLine(name, "pending")


def _dry_run(run: Run, state: FleetState) -> Produced:
    engine: Engine[Target] = Engine(
        work=lambda target: dry_run_target(run, target),
        name_of=lambda target: target.name,
        concurrency=state.fleet.concurrency,
        stop_on_failure=False,
        progress=state.report,
        words=DRY_RUN_WORDS,
    )
    state.rollout = roll_out(engine, state.waves)
    return Produced()


def result_of(run: Run, state: FleetState, stopped: str | None) -> FleetEmergencyResult:
    """The fleet emergency's result, from the rollout and what the fleet's steps made."""
    rollout = state.rollout or Rollout(())
    outcomes = left_out(state.found.left_out())
    result = FleetResult(
        state.fleet, run.migration.name, "emergency", run.request.dry_run, rollout, outcomes
    )
    made, incident = run.made, run.made.incident
    backups = None
    if made.rolled_back_at is not None and not run.request.no_backup:
        backups = run.backup_folder
    part = incident.path if isinstance(incident, ShardIncident) else None
    return FleetEmergencyResult(
        result,
        incident_id=incident.pm.id if incident else None,
        postmortem=incident.path if incident and part is None else None,
        part=part,
        fix_forward=made.fix_forward,
        review_due=made.review_due if part is None else None,  # the merge sets the deadline
        rolled_back_at=made.rolled_back_at,
        git=made.git,
        scratch_rehearsal=made.scratch_rehearsal,
        backups=backups,
        warnings=[*(made.plan.warnings if made.plan else ()), *run.warnings],
        stopped=stopped,
    )
