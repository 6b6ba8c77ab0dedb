"""The emergency procedure's steps, in order, each short and named for what it does.

Every step reads the :class:`~backout.operations.emergency.model.Run`, writes its own timeline
entries once the incident is open, and returns what it produced. :data:`DRY_RUN` and
:data:`ROLL_BACK` are the two procedures.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from backout import git
from backout.database.histories import Recorded
from backout.database.histories.binding import history_of
from backout.database.history import (
    incident_rollback,
    last_rollbacks,
    table_exists,
)
from backout.errors import BackoutError, RefusedError
from backout.migrations.authoring import create_migration, plan_fix_forward
from backout.migrations.catalog import Catalog, Entry
from backout.migrations.statements import Statement
from backout.operations.backup import Manifest, plan_backup, write_backup
from backout.operations.backup.manifest import ManifestItem
from backout.operations.dry_run import dry_run
from backout.operations.emergency.incident import Completion, Incident, Opening, open_incident
from backout.operations.emergency.model import Earlier, Produced, Run, Step
from backout.operations.emergency.preflight import preflight
from backout.operations.impact import measure, refuse_damage
from backout.operations.operation import (
    Plan,
    approve_and_confirm,
    guarded,
    log_decision,
    rollback_step,
    smoke_after,
)
from backout.operations.rehearsal import rehearse_quietly
from backout.operations.rollback import (
    recorded_schema,
    refuse_changed_rollback,
    refuse_troubles,
)
from backout.operations.verify import restoration
from backout.postmortems.collection import unfinished_incident
from backout.postmortems.deadlines import review_due
from backout.postmortems.file import render_postmortem


def check_safe(run: Run) -> Produced:
    """Applied here, not already rolled back, its ROLLBACK section unchanged since; or rolled
    back by an earlier run of an incident that did not finish, which this run continues."""
    earlier = earlier_commit(run)
    if earlier is not None:
        plan = Plan("emergency", run.ctx.target, ((run.migration, run.statements),))
        return Produced(plan=plan, earlier=earlier)
    return Produced(plan=safety_plan(run))


def earlier_commit(run: Run) -> Earlier | None:
    """The rollback an unfinished incident of this migration committed, if one did."""
    settings, migration = run.ctx.settings, run.migration
    unfinished = unfinished_incident(settings.postmortems, migration.name, run.ctx.target.name)
    if unfinished is None:
        return None
    if (migration.version or "") in _recorded(run).applied:
        return None  # applied again since: this is a new rollback
    found = incident_rollback(run.conn, settings.audit_table, unfinished.pm.id)
    if found is None:
        return None
    audit_event, details = found
    later = details.get("later_migrations")
    recorded = (details.get("schema_before"), int(later)) if later is not None else None
    return Earlier(
        audit_event,
        datetime.fromisoformat(str(details["rolled_back_at"])),
        datetime.fromisoformat(str(details["review_due"])),
        recorded,
    )


def safety_plan(run: Run) -> Plan:
    """The emergency's plan, or the refusal that says why it is not safe to act."""
    settings, target, migration = run.ctx.settings, run.ctx.target, run.migration
    plan = Plan("emergency", target, ((migration, run.statements),))
    history = history_of(run.conn, settings, run.catalog, migration.folder)
    table = history.table
    if not table_exists(run.conn, table):
        if not run.request.assume_applied:
            raise RefusedError(
                f"{target.name} has no {table} table: it was migrated by hand",
                hint=f"if {migration.name} is applied there, pass --assume-applied",
            )
        return plan
    recorded = history.read(run.conn, run.catalog.in_folder(migration.folder))
    plan = replace(plan, warnings=refuse_troubles(recorded, history.tool, migration))
    applied = recorded.applied.get(migration.version or "")
    if applied is None:
        _refuse_not_applied(run, table)
    elif run.request.rollback_file is None and not run.request.use_current_rollback:
        refuse_changed_rollback(migration, applied)
    history.check_rollback(run.conn, run.entry, run.catalog.in_folder(migration.folder))
    return plan


def _recorded(run: Run) -> Recorded:
    """What the migration's folder's history says, on the target."""
    history = history_of(run.conn, run.ctx.settings, run.catalog, run.migration.folder)
    return history.read(run.conn, run.catalog.in_folder(run.migration.folder))


def _refuse_not_applied(run: Run, table: str) -> None:
    name = run.migration.name
    earlier = last_rollbacks(run.conn, run.ctx.settings.audit_table, table).get(name)
    if earlier is not None:
        raise RefusedError(
            f"{name} was already rolled back ({earlier.action} "
            f"{earlier.at:%Y-%m-%d %H:%M} UTC"
            + (f", incident {earlier.incident})" if earlier.incident else ")"),
            hint="fix forward with the stub it left; nothing was changed",
        )
    if not run.request.assume_applied:
        raise RefusedError(
            f"{name} is not applied in {run.ctx.target.name}",
            hint="`backout status` shows what is applied",
        )


def measure_the_blast_radius(run: Run) -> Produced:
    """What the rollback locks, removes and waits for, said before anything runs; refused
    (exit 4) when it would fail on a dependency or, unless accepted, damage other migrations."""
    if run.made.earlier is not None:
        return Produced()
    blast = measure(run.conn, run.ctx.settings, run.catalog, run.migration, run.statements)
    accepted: dict[str, list[str]] = {}
    if not run.request.dry_run:
        accepted = refuse_damage(blast, run.ctx.target, accepted=run.request.accept_damage)
    assert run.made.plan is not None  # shown with the plan when the operator confirms
    plan = replace(run.made.plan, blast=blast, accepted_damage=accepted)
    return Produced(plan=plan, blast=blast, accepted_damage=accepted)


def rehearse(run: Run) -> Produced:
    """The documented rollback on a scratch database first; reported, never blocking."""
    if run.made.earlier is not None:
        return Produced()
    if not run.request.rehearse:
        why = run.request.skipped_rehearsal
        return Produced(scratch_rehearsal=f"skipped: {why}" if why else None)
    run.ctx.report("rehearsing the rollback on a scratch database ...")
    outcome = rehearse_quietly(run.ctx.settings, run.conn, run.migration)
    if run.request.rollback_file is not None:
        outcome += " (the documented rollback, not --rollback-file)"
    run.ctx.report(f"rehearsal: {outcome}")
    return Produced(scratch_rehearsal=outcome)


def plan_the_backup(run: Run) -> Produced:
    """``--dry-run``: what the backup would hold."""
    if run.request.no_backup:
        return Produced()
    return Produced(backup_plan=plan_backup(run.conn, run.statements, run.ctx.waits))


def try_on_the_target(run: Run) -> Produced:
    """``--dry-run``: each statement on the target, in a transaction always rolled back."""
    return Produced(dry_run_lines=tuple(dry_run(run.conn, run.statements, run.ctx.waits)))


def check_ahead(run: Run) -> Produced:
    """Pre-flight: what would fail after the commit is refused now, nothing changed."""
    preflight(run, opening(run))
    return Produced()


def confirm(run: Run) -> Produced:
    """Approval where the environment requires it, then the operator's confirmation (not when
    the rollback already committed in an earlier run: nothing is left to confirm)."""
    assert run.made.plan is not None
    if run.made.earlier is None:
        approve_and_confirm(run.ctx, run.made.plan)
    return Produced()


def opening(run: Run) -> Opening:
    """What the incident's postmortem starts with, from the request."""
    request = run.request
    waiver = request.backup_waiver if request.no_backup else None
    return Opening(
        run.migration,
        run.statements,
        run.ctx.target,
        run.ctx.operator,
        request.reason,
        request.severity,
        request.owner,
        waiver,
        fleet=run.fleet,
    )


def open_the_incident(run: Run) -> Produced:
    """The postmortem first, status draft, timeline started (or the unfinished one continued)."""
    settings = run.ctx.settings
    incident = open_incident(settings, opening(run), run.now())
    rehearsal = run.made.scratch_rehearsal
    if rehearsal is not None:
        incident.pm = replace(incident.pm, rehearsal=rehearsal)
        incident.note(run.now(), f"rehearsal on a scratch database: {rehearsal}")
    note_blast_radius(run, incident)
    run.ctx.report(f"incident {incident.pm.id} opened: {settings.relative(incident.path)}")
    return Produced(incident=incident)


def note_blast_radius(run: Run, incident: Incident) -> None:
    """The blast radius, and any damage accepted, on the incident's timeline."""
    blast = run.made.blast
    if blast is None:
        return
    removed = sum(len(i.removes) for i in blast.impacts)
    locks = sorted(
        {f"{lock.mode.sql} on {lock.relation}" for i in blast.impacts for lock in i.locks}
    )
    incident.note(
        run.now(),
        f"blast radius: {removed} objects removed; locks {', '.join(locks) or 'none'}",
    )
    for name, objects in (run.made.accepted_damage or {}).items():
        incident.note(
            run.now(),
            f"damage accepted (--accept-damage): {name} loses {', '.join(objects)}",
        )


def take_the_lock(run: Run) -> Produced:
    """The migration lock, the tables, the plan made again under it, the approval audited."""
    if run.made.earlier is not None:
        return Produced()
    run.note(f"waiting for the migration lock (up to {run.ctx.options.lock_wait:g} s)")
    asked = time.monotonic()

    def both(line: str) -> None:  # lock retries and blockers: on screen and in the timeline
        run.ctx.report(line)
        run.note(line.strip())

    ctx = replace(run.ctx, report=both, confirm=lambda _: True)
    assert run.made.plan is not None
    plan, runner = run.resources.enter_context(
        guarded(ctx, run.conn, run.made.plan, lambda: safety_plan(run))
    )
    run.note(f"migration lock taken after {round((time.monotonic() - asked) * 1000)} ms")
    return Produced(plan=plan, runner=runner)


def back_up(run: Run) -> Produced:
    """What the rollback destroys, copied before it runs (or the written waiver recorded)."""
    settings, request = run.ctx.settings, run.request
    if run.made.earlier is not None:  # the data is gone: the earlier run's backup holds it
        recorded = run.incident.pm.backup
        return Produced(backup_folder=settings.root / recorded if recorded else None)
    if request.no_backup:
        run.note(f"backup waived: {' '.join((request.backup_waiver or '').split())}")
        return Produced()
    keep_backups_out_of_git(run)
    return back_up_here(run)


def back_up_here(run: Run) -> Produced:
    """The backup into the run's backup folder (the folder kept out of git beforehand)."""
    settings, folder = run.ctx.settings, run.backup_folder
    _keep_earlier_attempt(run, folder)
    assert run.made.runner is not None
    waits = run.made.runner.waits
    plan = plan_backup(run.conn, run.statements, waits)
    for warning in plan.warnings:
        run.note(f"backup: {warning}")
    where = settings.relative(folder)
    run.note(f"backing up {_objects(plan.items)} to {where}")
    manifest = write_backup(
        run.conn, plan, folder, progress=run.backup_progress, now=run.now(), waits=waits
    )
    _note_backup(run, manifest, str(where))
    run.incident.record_backup(str(where))
    return Produced(backup_plan=plan, backup=manifest, backup_folder=folder)


def keep_backups_out_of_git(run: Run) -> None:
    """The backups folder ignored by git before a production row is written to it, said once
    (on screen and in the timeline); nothing when git already ignores it or there is none."""
    settings = run.ctx.settings
    try:
        line = git.exclude_folder(settings.root, settings.backups_folder)
    except (git.GitError, OSError) as exc:
        line, done = None, f"could not add the backups folder to git's exclude file: {exc}"
        run.note(f"{done}; never commit {settings.relative(settings.backups_folder)}")
    if line is not None:
        done = f"added {line} to .git/info/exclude so backups are never committed"
        run.note(done)
        run.ctx.report(done)


def _keep_earlier_attempt(run: Run, folder: Path) -> None:
    """A backup belongs to the run that rolls back: an earlier run's is kept aside, never
    reused (the application may have written rows since)."""
    if not folder.exists() or not any(folder.iterdir()):
        return
    kept = folder.with_name(f"{folder.name}.earlier-{run.now():%Y%m%dT%H%M%S}")
    folder.rename(kept)
    where = run.ctx.settings.relative(kept)
    run.note(f"an earlier run's backup kept as {where}; taking a fresh one (the data may differ)")


def _note_backup(run: Run, manifest: Manifest, where: str) -> None:
    rows = sum(item.rows for item in manifest.items)
    size = sum(item.bytes for item in manifest.items)
    run.note(f"backup done: {_objects(manifest.items)}, {rows} rows, {size} bytes")
    for item in manifest.items:
        run.note(f"  {item.file}: {item.table}, {item.rows} rows ({item.reason})")
    run.ctx.report(f"backup: {_objects(manifest.items)}, {rows} rows in {where}")


def roll_back(run: Run) -> Produced:
    """The rollback SQL, the history row removed and the audit row, in one transaction."""
    settings, migration, runner = run.ctx.settings, run.migration, run.made.runner
    if run.made.earlier is not None:
        return _committed_earlier(run, run.made.earlier)
    assert runner is not None
    recorded = recorded_schema(run.conn, settings, run.catalog, migration)
    step = replace(
        rollback_step(
            run.ctx,
            history_of(run.conn, settings, run.catalog, migration.folder),
            run.catalog,
            migration,
            run.statements,
            "emergency",
        ),
        late_details=lambda at: _audit_details(run, at, recorded),
    )
    runner.on_statement = lambda s, rows, ms: run.note(
        f"ran line {s.line}: {_first_words(s.sql)} ({_destroyed(run, s, rows)}, {ms} ms)"
    )
    run.note(f"rolling back {migration.name} ({_count(run.statements)})")
    ran = runner.run(step)
    run.note(
        f"committed: history row removed and audit event {ran.audit_id} written "
        "in the same transaction",
        at=ran.at,
    )
    due = review_due(ran.at, settings.clock_policy)
    return Produced(
        rolled_back_at=ran.at, review_due=due, audit_event=ran.audit_id, recorded_schema=recorded
    )


def _committed_earlier(run: Run, earlier: Earlier) -> Produced:
    run.note(
        f"the rollback committed in an earlier run (audit event {earlier.audit_event}, "
        f"{earlier.rolled_back_at:%Y-%m-%d %H:%M:%S} UTC): finishing the incident"
    )
    return Produced(
        rolled_back_at=earlier.rolled_back_at,
        review_due=earlier.review_due,
        audit_event=earlier.audit_event,
        recorded_schema=earlier.recorded_schema,
    )


def _audit_details(run: Run, at: datetime, recorded: tuple[str | None, int]) -> dict[str, Any]:
    """The incident, the backup, the deadline and what a re-run needs to finish, in the
    rollback's audit row."""
    pm, folder = run.incident.pm, run.made.backup_folder
    return {
        "incident": pm.id,
        "backup": str(run.ctx.settings.relative(folder)) if folder is not None else None,
        "backup_waiver": pm.backup_waiver,
        "rolled_back_at": at.isoformat(),
        "review_due": review_due(at, run.ctx.settings.clock_policy).isoformat(),
        "schema_before": recorded[0],
        "later_migrations": recorded[1],
        "accepted_damage": run.made.accepted_damage or {},
        **run.audit_details,
    }


def check_the_schema(run: Run) -> Produced:
    """Whether the schema is what it was before the migration was applied."""
    if run.made.recorded_schema is None:
        check = "not checked: the schema recorded when it was applied is not known here"
    else:
        recorded, later = run.made.recorded_schema
        check = restoration(run.conn, run.ctx.settings, run.migration, recorded, later)
    run.incident.record_schema_check(check)
    run.note(f"schema check: {check}")
    return Produced(schema_check=check)


def smoke_checks(run: Run) -> Produced:
    """The project's smoke checks on the database just rolled back, audited."""
    results = smoke_after(run.ctx, run.conn, "emergency", [run.migration.name])
    for result in results:
        run.note(result.describe())
    return Produced(smoke=tuple(results))


def release_the_lock(run: Run) -> Produced:
    """The migration lock and the connection, let go: the database work is done."""
    run.resources.close()
    run.note(f"rolled back {run.migration.name}")
    return Produced()


def write_the_stub(run: Run) -> Produced:
    """The fix-forward migration to write next (the original file is never edited)."""
    settings, incident = run.ctx.settings, run.incident
    path = _existing_stub(run)
    if path is None:
        stub = plan_fix_forward(
            run.catalog, run.entry, incident.pm.id, templates=settings.templates
        )
        path = create_migration(stub)
        run.note(f"fix-forward stub written: {settings.relative(path)}")
    incident.pm = replace(incident.pm, fix_forward=str(settings.relative(path)))
    incident.save()
    return Produced(fix_forward=path)


def _existing_stub(run: Run) -> Path | None:
    """The stub an earlier run of this incident wrote, if there is one."""
    return existing_stub(run.catalog, run.entry, run.incident.pm.id)


def existing_stub(catalog: Catalog, entry: Entry, incident_id: str) -> Path | None:
    """The fix-forward stub of ``incident_id`` in ``entry``'s folder, if one was written."""
    for other in catalog.in_folder(entry.folder):
        try:
            found = other.read()
        except BackoutError:
            continue
        named = found.header_value("Incident") == incident_id
        if found.is_stub and (named or f"Incident: {incident_id}" in found.comments):
            return found.path
    return None


def complete_the_postmortem(run: Run) -> Produced:
    """The deadlines, the fix-forward and its action item; the postmortem is ready for review."""
    made = run.made
    assert made.rolled_back_at is not None
    assert made.review_due is not None
    done = Completion(made.rolled_back_at, made.review_due, made.audit_event, made.fix_forward)
    run.incident.complete(run.ctx.settings, done)
    run.note(f"postmortem ready for review; review due {made.review_due:%Y-%m-%d %H:%M} UTC")
    return Produced()


def record_in_git(run: Run) -> Produced:
    """The postmortem and the stub committed on ``incident/<id>``; the checkout left alone.

    The last step. The branch gets the postmortem as it will stay in the working tree (saying
    what is still pending: nothing, unless a step failed), committed from memory while the copy
    on disk still says "record in git" is pending: a run stopped in between leaves it pending,
    and its re-run commits again on the same branch. Then the copies are identical and "Next:"
    can say they may simply be removed before ``git switch``."""
    if run.request.no_git:
        return Produced()
    incident, stub = run.incident, run.made.fix_forward
    final = replace(incident.pm, steps_pending=tuple(run.left_undone))
    text = render_postmortem(final, incident.templates)
    branch = f"incident/{incident.pm.id}"
    message = f"{incident.pm.id}: postmortem draft and fix-forward stub for {run.migration.name}"
    files = [incident.path, *([stub] if stub is not None else [])]
    root = run.ctx.settings.root
    try:
        commit = git.commit_files_on_branch(
            root, files, branch, message, {incident.path: text}, extend=incident.continued
        )
    except git.GitError as exc:  # the rollback is done: say so, never undo it for git
        incident.pending(final.steps_pending)
        return Produced(warning=f"not committed on {branch}: {exc}")
    incident.pending(final.steps_pending)
    if commit is None:
        return Produced(
            warning="not a git repository: the postmortem and the stub are not committed"
        )
    if incident.pm.steps_pending:  # a re-run needs the copies: nothing is said safe to remove
        return Produced(git=commit)
    try:
        return Produced(git=replace(commit, identical=git.identical_copies(root, commit)))
    except git.GitError:
        return Produced(git=commit)


def log_the_decision(run: Run) -> Produced:
    """One entry in the decisions log, on a named environment."""
    verb = f"Rolled back ({run.incident.pm.id})"
    log_decision(run.ctx, verb, [run.migration.name])
    return Produced()


DRY_RUN: tuple[Step, ...] = (
    Step("check it is safe", check_safe),
    Step("measure the blast radius", measure_the_blast_radius),
    Step("rehearse on a scratch database", rehearse),
    Step("plan the backup", plan_the_backup),
    Step("dry run on the target", try_on_the_target),
)
"""``--dry-run``: everything that changes nothing."""

ROLL_BACK: tuple[Step, ...] = (
    Step("check it is safe", check_safe),
    Step("measure the blast radius", measure_the_blast_radius),
    Step("rehearse on a scratch database", rehearse),
    Step("pre-flight", check_ahead),
    Step("confirm", confirm),
    Step("open the incident", open_the_incident),
    Step("take the migration lock", take_the_lock, failure="waiting for the migration lock"),
    Step("back up", back_up, failure="backup"),
    Step("roll back", roll_back, failure="rollback"),
    Step("check the schema", check_the_schema, after_commit=True),
    Step("smoke checks", smoke_checks, after_commit=True),
    Step("release the lock", release_the_lock, after_commit=True),
    Step("write the fix-forward stub", write_the_stub, after_commit=True),
    Step("complete the postmortem", complete_the_postmortem, after_commit=True),
    Step("log the decision", log_the_decision, after_commit=True),
    Step("record in git", record_in_git, after_commit=True),
)
"""The emergency procedure, in the strategy's order."""


def _count(statements: Sequence[object]) -> str:
    return f"{len(statements)} statement" + ("" if len(statements) == 1 else "s")


def _objects(items: Sequence[object]) -> str:
    return f"{len(items)} object" + ("" if len(items) == 1 else "s")


def _first_words(sql: str, limit: int = 120) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _rows(count: int) -> str:
    return "no rows" if count < 0 else f"{count} row" + ("" if count == 1 else "s")


def _destroyed(run: Run, statement: Statement, count: int) -> str:
    """The rows a statement touched: its row count when the server gives one (DML); for DDL
    that destroys rows (``DROP TABLE``, ``DROP COLUMN``, ``TRUNCATE``), the rows the backup
    holds for it, since the server counts none."""
    if count >= 0 or not statement.data_loss:
        return _rows(count)
    if run.request.no_backup:
        return "rows not counted: backup waived"
    manifest = run.made.backup
    items = [i for i in (manifest.items if manifest else ()) if _backs_up(i.reason, statement)]
    if not items:
        return "rows not counted: nothing of it in the backup"
    return "; ".join(f"drops {_rows(i.rows)} of {_table(i)}, backed up" for i in items)


def _backs_up(reason: str, statement: Statement) -> bool:
    """Whether a backup item's reason names one of ``statement``'s data losses (a reason is
    ``DROP TABLE public.jobs``, or ``dropped by DROP TABLE public.jobs CASCADE``, joined by
    ``; `` when several losses claim one table)."""
    said = {loss.describe() for loss in statement.data_loss}
    parts = reason.split("; ")
    return any(part == d or part.endswith(f" {d}") for part in parts for d in said)


def _table(item: ManifestItem) -> str:
    whole = not item.key
    return (
        item.table
        if whole
        else f"{item.table} ({', '.join(c for c in item.columns if c not in item.key)})"
    )
