"""``backout emergency``: the strategy's emergency procedure, in order, as one function.

1. resolve the migration and its documented rollback SQL, explain it, confirm;
2. check it is safe to act (applied here; the ROLLBACK section unchanged; not rolled back);
3. open the incident first: the postmortem file, status ``draft``, timeline started;
4. back up what the rollback destroys (or record a written waiver);
5. roll back under the lock, with timeouts, retries and blocker reports, history and audit in
   the same transaction;
6. write the fix-forward stub; 7. complete the postmortem (review due in 72 h);
8. commit the postmortem and the stub on ``incident/<id>``, leaving the engineer's work alone.

Every step lands in the postmortem's timeline as it happens, so a failure or a killed process
leaves evidence; running the same command again continues the same incident.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from backout import git_branch, gitops
from backout.config import Settings
from backout.database.connection import Target, connect
from backout.database.history import last_rollbacks, read_history, table_exists
from backout.database.runner import Reporter, RunOptions, Step, sql_sha256
from backout.errors import BackoutError, RefusedError, UsageError
from backout.migrations.authoring import create_migration, plan_fix_forward
from backout.migrations.catalog import Catalog, Entry, project_catalog
from backout.migrations.file import MigrationFile
from backout.migrations.statements import Statement
from backout.operations.approval import Operator, check_approval
from backout.operations.backup import BackupPlan, Manifest, Progress, plan_backup, write_backup
from backout.operations.lifecycle import (
    Confirm,
    Plan,
    audit_event,
    guarded,
    log_decision,
    rollback_step,
    smoke_after,
)
from backout.operations.rehearsal import rehearse_quietly
from backout.operations.rollback import recorded_schema, rehearse, rollback_statements_of
from backout.operations.smoke import SmokeResult
from backout.operations.verify import restoration
from backout.postmortems.collection import taken_incident_ids, unfinished_incident
from backout.postmortems.deadlines import action_item_due, review_due
from backout.postmortems.file import write_postmortem as _write
from backout.postmortems.incidents import next_incident_id, slug
from backout.postmortems.model import ActionItem, Postmortem

SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Request:
    """What the on-call engineer asked for."""

    reference: str
    reason: str
    severity: str = "SEV2"
    owner: str | None = None
    rollback_file: Path | None = None
    no_backup: bool = False
    backup_waiver: str | None = None
    no_git: bool = False
    dry_run: bool = False
    assume_applied: bool = False
    use_current_rollback: bool = False
    rehearse: bool = True
    """Rehearse the documented rollback on a scratch database first (never blocks)."""


@dataclass
class Result:
    """What the emergency did; ``--json`` prints it with stable keys."""

    migration: MigrationFile
    statements: tuple[Statement, ...]
    environment: str = ""
    dry_run: bool = False
    incident_id: str | None = None
    postmortem: Path | None = None
    fix_forward: Path | None = None
    backup: Manifest | None = None
    backup_plan: BackupPlan | None = None
    """What the backup holds (or, in a dry run, would hold)."""
    backup_folder: Path | None = None
    review_due: datetime | None = None
    rolled_back_at: datetime | None = None
    audit_event: int | None = None
    git: git_branch.BranchCommit | None = None
    rehearsal: list[str] = field(default_factory=list)
    """``--dry-run``: each statement's result on this database, rolled back."""
    scratch_rehearsal: str | None = None
    """Whether the documented rollback passed rehearsal on a scratch database."""
    schema_check: str | None = None
    """After the rollback: whether the schema is what it was before the migration."""
    smoke: list[SmokeResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def sql_sha256(self) -> str:
        return sql_sha256(self.statements)


def emergency(
    settings: Settings,
    target: Target,
    operator: Operator,
    request: Request,
    *,
    options: RunOptions | None = None,
    confirm: Confirm = lambda _: True,
    report: Reporter = lambda _: None,
    now: Clock = lambda: datetime.now(UTC),
    cwd: Path | None = None,
    backup_progress: Progress | None = None,
) -> Result:
    """Run the emergency procedure for ``request.reference`` on ``target``."""
    options = options or RunOptions()
    if request.severity not in SEVERITIES:
        raise UsageError(f"unknown severity {request.severity!r}", hint="use SEV1 to SEV4")
    if request.no_backup and not (request.backup_waiver or "").strip():
        raise UsageError("--no-backup needs --backup-waiver saying why no backup is needed")
    catalog = project_catalog(settings)
    entry = catalog.resolve(request.reference, cwd or settings.root)
    migration = entry.read()
    statements = rollback_statements_of(migration, request.rollback_file, missing=UsageError)
    result = Result(migration, statements, target.name)
    with connect(target.url, autocommit=True) as conn:

        def replan() -> Plan:
            return _check_safe(settings, conn, target, migration, statements, request)

        plan = replan()
        result.warnings.extend(plan.warnings)
        if request.rehearse:
            report("rehearsing the rollback on a scratch database ...")
            result.scratch_rehearsal = rehearse_quietly(settings, migration.name)
            if request.rollback_file is not None:
                result.scratch_rehearsal += " (the documented rollback, not --rollback-file)"
            report(f"rehearsal: {result.scratch_rehearsal}")
        if request.dry_run:
            result.dry_run = True
            if not request.no_backup:
                result.backup_plan = plan_backup(conn, statements)
            result.rehearsal = rehearse(conn, plan).done
            return result
        check_approval(target, operator)
        if not confirm(plan):
            raise RefusedError("not confirmed", hint="nothing was changed")
        incident = _open_incident(settings, catalog, entry, target, operator, request, now)
        result.incident_id, result.postmortem = incident.pm.id, incident.path
        if result.scratch_rehearsal is not None:
            incident.pm = replace(incident.pm, rehearsal=result.scratch_rehearsal)
            incident.note(now(), f"rehearsal on a scratch database: {result.scratch_rehearsal}")
        report(f"incident {incident.pm.id} opened: {settings.relative(incident.path)}")

        def both(line: str) -> None:  # lock retries and blockers: on screen and in the timeline
            report(line)
            incident.note(now(), line.strip())

        stage = "waiting for the migration lock"
        incident.note(now(), f"{stage} (up to {options.lock_wait:g} s)")
        asked = time.monotonic()
        completed: dict[str, datetime] = {}
        try:
            with guarded(settings, operator, conn, plan, replan, options, lambda _: True, both) as (
                plan,
                runner,
            ):
                waited = round((time.monotonic() - asked) * 1000)
                incident.note(now(), f"migration lock taken after {waited} ms")
                stage = "backup"
                _back_up(settings, conn, incident, request, result, now, report, backup_progress)
                stage = "rollback"
                step = _emergency_step(
                    settings, target, operator, migration, statements, incident, completed, now
                )
                runner.on_statement = lambda s, rows, ms: incident.note(
                    now(), f"ran line {s.line}: {_first_words(s.sql)} ({_rows(rows)}, {ms} ms)"
                )
                incident.note(now(), f"rolling back {migration.name} ({_count(statements)})")
                recorded, later = recorded_schema(conn, settings, migration)
                runner.run(step)
                stage = "schema check"
                result.schema_check = restoration(conn, settings, migration, recorded, later)
                stage = "smoke checks"
                result.smoke = smoke_after(
                    settings, conn, target, operator, "emergency", [migration.name]
                )
        except BaseException as exc:  # the timeline says what failed, whatever it was
            incident.note(now(), _failure(stage, exc))
            raise
        incident.note(
            completed["at"],
            f"committed: history row removed and audit event {runner.audit_id} written "
            "in the same transaction",
        )
        incident.pm = replace(incident.pm, schema_check=result.schema_check)
        incident.note(now(), f"schema check: {result.schema_check}")
        for smoke in result.smoke:
            incident.note(now(), smoke.describe())
        result.rolled_back_at = completed["at"]
        result.review_due = review_due(completed["at"], settings.clock_policy)
        result.audit_event = runner.audit_id
    incident.note(now(), f"rolled back {migration.name}")
    stub = plan_fix_forward(catalog, entry, incident.pm.id, templates=settings.templates)
    result.fix_forward = create_migration(stub)
    incident.note(now(), f"fix-forward stub written: {settings.relative(stub.path)}")
    incident.complete(settings, result, now())
    result.git = _record_in_git(settings, incident, result, request, report)
    log_decision(settings, target, operator, f"Rolled back ({incident.pm.id})", [migration.name])
    return result


def _emergency_step(
    settings: Settings,
    target: Target,
    operator: Operator,
    migration: MigrationFile,
    statements: tuple[Statement, ...],
    incident: _Incident,
    completed: dict[str, datetime],
    now: Clock,
) -> Step:
    """The rollback step, audited as ``emergency`` with the incident and its deadline."""
    step = rollback_step(settings, target, operator, migration, statements, "emergency")
    return replace(
        step,
        audit=audit_event(target, operator, "emergency", migration, step.history_table),
        finish=_finishing(step.finish, completed, now),
        late_details=lambda: {
            "incident": incident.pm.id,
            "backup": incident.pm.backup,
            "backup_waiver": incident.pm.backup_waiver,
            "rolled_back_at": completed["at"].isoformat(),
            "review_due": review_due(completed["at"], settings.clock_policy).isoformat(),
        },
    )


def _failure(stage: str, exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        what = "interrupted"
    elif isinstance(exc, BackoutError):
        what = exc.message
    else:
        what = f"internal error: {type(exc).__name__}: {exc}"
    if stage == "rollback":
        return f"rollback FAILED: {what}"
    return f"{stage} FAILED: {what}; nothing was rolled back"


def _count(statements: Sequence[object]) -> str:
    return f"{len(statements)} statement" + ("" if len(statements) == 1 else "s")


def _check_safe(
    settings: Settings,
    conn: psycopg.Connection[Any],
    target: Target,
    migration: MigrationFile,
    statements: tuple[Statement, ...],
    request: Request,
) -> Plan:
    table = settings.history_table(migration.folder)
    if not table_exists(conn, table):
        if not request.assume_applied:
            raise RefusedError(
                f"{target.name} has no {table} table: it was migrated by hand",
                hint=f"if {migration.name} is applied there, pass --assume-applied",
            )
        return Plan("emergency", target, ((migration, statements),))
    applied = read_history(conn, table).get(migration.version or "")
    if applied is None:
        earlier = last_rollbacks(conn, settings.audit_table, table).get(migration.name)
        if earlier is not None:
            raise RefusedError(
                f"{migration.name} was already rolled back ({earlier.action} "
                f"{earlier.at:%Y-%m-%d %H:%M} UTC"
                + (f", incident {earlier.incident})" if earlier.incident else ")"),
                hint="fix forward with the stub it left; nothing was changed",
            )
        if not request.assume_applied:
            raise RefusedError(
                f"{migration.name} is not applied in {target.name}",
                hint="`backout status` shows what is applied",
            )
    changed = applied is not None and applied.rollback_checksum not in (
        None,
        migration.rollback.checksum,
    )
    if changed and request.rollback_file is None and not request.use_current_rollback:
        assert applied is not None
        refusal = RefusedError(
            f"the ROLLBACK section of {migration.name} changed since it was applied",
            hint="check the difference, then pass --use-current-rollback to run it",
        )
        refusal.evidence = gitops.file_diff_since(migration.path, applied.applied_at)
        raise refusal
    return Plan("emergency", target, ((migration, statements),))


@dataclass
class _Incident:
    """The open incident: its postmortem, rewritten after every step."""

    pm: Postmortem
    path: Path
    templates: Path

    def note(self, at: datetime, text: str) -> None:
        self.pm = self.pm.with_entry(at, text)
        _write(self.path, self.pm, self.templates)

    def complete(self, settings: Settings, result: Result, at: datetime) -> None:
        assert result.rolled_back_at is not None
        assert result.fix_forward is not None
        self.pm = replace(
            self.pm,
            rolled_back_at=result.rolled_back_at,
            review_due=result.review_due,
            fix_forward=settings.relative(result.fix_forward),
            audit_event=result.audit_event,
            action_items=(
                ActionItem(
                    f"Write, review and apply {result.fix_forward.name}",
                    self.pm.owner,
                    action_item_due(
                        result.rolled_back_at, self.pm.severity, settings.action_item_days
                    ),
                ),
            ),
        )
        assert result.review_due is not None
        self.note(
            at, f"postmortem ready for review; review due {result.review_due:%Y-%m-%d %H:%M} UTC"
        )


def _open_incident(
    settings: Settings,
    catalog: Catalog,
    entry: Entry,
    target: Target,
    operator: Operator,
    request: Request,
    now: Clock,
) -> _Incident:
    """The incident's postmortem, written at once; an unfinished one for the same migration is
    continued (a re-run after a failure or a killed process)."""
    folder = settings.postmortems
    started = now()
    migration = entry.read()
    unfinished = unfinished_incident(folder, migration.name, target.name)
    if unfinished is not None:
        pm = _postmortem(settings, migration, target, operator, request, unfinished.pm.id, started)
        incident = _Incident(
            replace(pm, timeline=unfinished.pm.timeline), unfinished.path, settings.templates
        )
        incident.note(started, f"re-run by {operator.name} to continue the incident")
        return incident
    taken = taken_incident_ids(settings.root, folder)
    incident_id = next_incident_id(started.date(), taken)
    pm = _postmortem(settings, migration, target, operator, request, incident_id, started)
    path = folder / f"{incident_id}-{slug(migration.name)}.md"
    incident = _Incident(pm, path, settings.templates)
    incident.note(
        started, f"incident opened by {operator.name}: {' '.join(request.reason.split())}"
    )
    return incident


def _postmortem(
    settings: Settings,
    migration: MigrationFile,
    target: Target,
    operator: Operator,
    request: Request,
    incident_id: str,
    started: datetime,
) -> Postmortem:
    history = gitops.file_history(migration.path, None)
    introduced = f"commit {history[-1].sha} ({history[-1].author})" if history else None
    statements = rollback_statements_of(migration, request.rollback_file, missing=UsageError)
    return Postmortem(
        id=incident_id,
        title=f"Rollback of {migration.name} on {target.name}",
        severity=request.severity,
        environment=target.name,
        migration=migration.name,
        owner=request.owner or operator.name,
        reason=request.reason,
        operator=operator.name,
        started_at=started,
        clock=settings.clock_policy,
        approved_by=operator.approved_by,
        backup_waiver=request.backup_waiver if request.no_backup else None,
        rollback_sql="".join(f"{s.sql};\n" for s in statements),
        rollback_sha256=sql_sha256(statements),
        introduced_by=introduced,
    )


def _back_up(
    settings: Settings,
    conn: psycopg.Connection[Any],
    incident: _Incident,
    request: Request,
    result: Result,
    now: Clock,
    report: Reporter,
    progress: Progress | None,
) -> None:
    if request.no_backup:
        incident.note(now(), f"backup waived: {' '.join((request.backup_waiver or '').split())}")
        return
    folder = settings.backups_folder / incident.pm.id
    manifest_file = folder / "manifest.json"
    if manifest_file.exists():
        incident.note(now(), f"backup already taken by an earlier run: {settings.relative(folder)}")
        result.backup_folder = folder
        return
    if folder.exists() and any(folder.iterdir()):
        folder.rename(folder.with_name(f"{folder.name}.partial-{now():%Y%m%dT%H%M%S}"))
    plan = result.backup_plan = plan_backup(conn, result.statements)
    for warning in plan.warnings:
        incident.note(now(), f"backup: {warning}")
    where = settings.relative(folder)
    incident.note(now(), f"backing up {_objects(plan.items)} to {where}")
    manifest = write_backup(conn, plan, folder, progress=progress, now=now())
    rows = sum(item.rows for item in manifest.items)
    size = sum(item.bytes for item in manifest.items)
    incident.note(now(), f"backup done: {_objects(manifest.items)}, {rows} rows, {size} bytes")
    for item in manifest.items:
        incident.note(now(), f"  {item.file}: {item.table}, {item.rows} rows ({item.reason})")
    report(f"backup: {_objects(manifest.items)}, {rows} rows in {where}")
    result.backup, result.backup_folder = manifest, folder
    incident.pm = replace(incident.pm, backup=str(settings.relative(folder)))


def _record_in_git(
    settings: Settings, incident: _Incident, result: Result, request: Request, report: Reporter
) -> git_branch.BranchCommit | None:
    if request.no_git:
        return None
    assert result.fix_forward is not None
    files = [incident.path, result.fix_forward]
    branch = f"incident/{incident.pm.id}"
    try:
        commit = git_branch.commit_files_on_branch(
            settings.root,
            files,
            branch,
            f"{incident.pm.id}: postmortem draft and fix-forward stub for {result.migration.name}",
        )
    except git_branch.GitError as exc:  # the rollback is done: say so, never undo it for git
        result.warnings.append(f"not committed on {branch}: {exc}")
        return None
    if commit is None:
        result.warnings.append(
            "not a git repository: the postmortem and the stub are not committed"
        )
    return commit


def _finishing(
    finish: Callable[[psycopg.Connection[Any], int], None],
    completed: dict[str, datetime],
    now: Clock,
) -> Callable[[psycopg.Connection[Any], int], None]:
    def wrapped(conn: psycopg.Connection[Any], duration: int) -> None:
        finish(conn, duration)
        completed["at"] = now().replace(microsecond=0)

    return wrapped


def _objects(items: Sequence[object]) -> str:
    return f"{len(items)} object" + ("" if len(items) == 1 else "s")


def _first_words(sql: str, limit: int = 120) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _rows(count: int) -> str:
    return "no rows" if count < 0 else f"{count} row" + ("" if count == 1 else "s")
