"""One function per lifecycle command: ``status``, ``apply`` and ``baseline`` (``rollback`` is
:mod:`backout.operations.rollback`), and what they share: plans, outcomes, audit rows, the
decisions log.

Each reads the project and the database, refuses what the safety rules refuse (before taking
the lock and again under it), asks for confirmation through the ``confirm`` callback, and runs
its steps through :class:`backout.database.runner.Runner` under the migration lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from backout.config import Settings
from backout.database.connection import Target, connect
from backout.database.history import (
    Applied,
    AuditEvent,
    ensure_audit,
    ensure_history,
    last_rollbacks,
    read_history,
    record_applied,
    remove_applied,
)
from backout.database.lock import migration_lock
from backout.database.runner import Reporter, Runner, RunOptions, Step
from backout.errors import MalformedMigrationError, RefusedError
from backout.git import file_history
from backout.migrations.catalog import Catalog, Entry, project_catalog
from backout.migrations.file import MigrationFile
from backout.migrations.statements import Statement
from backout.operations.approval import Operator, audit_approval, check_approval
from backout.operations.rehearsal import gate
from backout.operations.smoke import SmokeResult, audit_smoke, run_smoke_checks
from backout.operations.status import FolderHistory, MigrationStatus, State, compute_status
from backout.operations.verify import schema_hash
from backout.postmortems import decisions


@dataclass(frozen=True)
class Plan:
    """What a command is about to run, shown for confirmation and by ``--dry-run``."""

    action: str
    target: Target
    steps: tuple[tuple[MigrationFile, tuple[Statement, ...]], ...]
    warnings: tuple[str, ...] = ()

    @property
    def confirm_word(self) -> str:
        """What the operator types to confirm: the last migration's version."""
        return self.steps[-1][0].version or self.steps[-1][0].name if self.steps else ""


Confirm = Callable[[Plan], bool]


@dataclass
class Outcome:
    """What a command did."""

    plan: Plan
    done: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    """Migrations an ``auto_rollback`` environment rolled back after a failure."""
    schema_check: str | None = None
    """After a rollback: whether the schema came back to what it was before the migration."""
    smoke: list[SmokeResult] = field(default_factory=list)
    """The project's smoke checks, run after the change."""


# --- status ---------------------------------------------------------------------------------


def status(settings: Settings, target: Target) -> list[MigrationStatus]:
    """Every migration's state in the target database. Read-only: creates nothing.

    A modified migration lists the commits that changed its file since it was applied, when
    the project is a git repository.
    """
    catalog = project_catalog(settings)
    with connect(target.url, autocommit=True) as conn:
        states = compute_status(_folder_histories(settings, catalog, conn))
    return [
        replace(s, changes=tuple(file_history(s.path, s.applied.applied_at)))
        if s.state is State.MODIFIED and s.path and s.applied
        else s
        for s in states
    ]


def _folder_histories(
    settings: Settings, catalog: Catalog, conn: psycopg.Connection[Any]
) -> list[FolderHistory]:
    histories = []
    for folder in catalog.folders:
        table = settings.history_table(folder)
        histories.append(
            FolderHistory(
                folder=folder,
                history_table=table,
                migrations=[e.read() for e in catalog.in_folder(folder)],
                applied=read_history(conn, table),
                rolled_back=last_rollbacks(conn, settings.audit_table, table),
            )
        )
    return histories


# --- apply ----------------------------------------------------------------------------------


def apply(
    settings: Settings,
    target: Target,
    operator: Operator,
    *,
    to: str | None = None,
    reapply: Sequence[str] = (),
    dry_run: bool = False,
    options: RunOptions | None = None,
    confirm: Confirm = lambda _: True,
    report: Reporter = lambda _: None,
    cwd: Path | None = None,
    skip_rehearsal: str | None = None,
) -> Outcome:
    """Apply pending migrations in order, each in its own transaction with its history row."""
    options = options or RunOptions()
    catalog = project_catalog(settings)
    limit = catalog.resolve(to, cwd or settings.root) if to else None
    with connect(target.url, autocommit=True) as conn:
        plan = _apply_plan(settings, catalog, conn, target, limit, reapply)
        if dry_run or not plan.steps:
            return Outcome(plan)

        def replan() -> Plan:
            return _apply_plan(settings, catalog, conn, target, limit, reapply)

        operator = gate(settings, target, operator, [m.name for m, _ in plan.steps], skip_rehearsal)
        with guarded(settings, operator, conn, plan, replan, options, confirm, report) as (
            plan,
            runner,
        ):
            outcome = Outcome(plan)
            try:
                for migration, statements in plan.steps:
                    count = f"{len(statements)} statement" + ("s" if len(statements) != 1 else "")
                    report(f"applying {migration.name} ({count})")
                    before = schema_hash(conn, settings, migration)
                    runner.run(
                        _apply_step(settings, target, operator, migration, statements, before)
                    )
                    outcome.done.append(migration.name)
            except Exception:
                if target.environment is not None and target.environment.auto_rollback:
                    _recover(settings, target, operator, runner, outcome, report)
                raise
            outcome.smoke = smoke_after(settings, conn, target, operator, "apply", outcome.done)
    log_decision(settings, target, operator, "Applied", outcome.done)
    return outcome


def smoke_after(
    settings: Settings,
    conn: psycopg.Connection[Any],
    target: Target,
    operator: Operator,
    action: str,
    migrations: Sequence[str],
) -> list[SmokeResult]:
    """The project's smoke checks after ``action``, audited."""
    results = run_smoke_checks(conn, settings.smoke_checks)
    audit_smoke(conn, settings.audit_table, target, operator, action, migrations, results)
    return results


def _apply_plan(
    settings: Settings,
    catalog: Catalog,
    conn: psycopg.Connection[Any],
    target: Target,
    limit: Entry | None,
    reapply: Sequence[str],
) -> Plan:
    states = compute_status(_folder_histories(settings, catalog, conn))
    modified = [s for s in states if s.state is State.MODIFIED]
    if modified:
        names = ", ".join(_shown(settings, s) for s in modified)
        raise RefusedError(
            f"applied migrations were modified since: {names}",
            hint="never edit an applied migration: restore it and fix forward with `backout new`",
        )
    allowed = {catalog.resolve(r, settings.root).path for r in reapply}
    steps = []
    for s in states:
        if s.migration is None or s.state not in (State.PENDING, State.ROLLED_BACK):
            continue
        if limit is not None and (s.folder != limit.folder or int(s.version) > (limit.number or 0)):
            continue
        m = s.migration
        if s.state is State.ROLLED_BACK and m.path not in allowed:
            assert s.rolled_back is not None
            raise RefusedError(
                f"{m.name} was rolled back ({s.rolled_back.action}, "
                f"{s.rolled_back.at:%Y-%m-%d %H:%M} UTC) and is not re-applied silently",
                hint=f"fix forward with a new migration, or pass --reapply {m.version}",
            )
        if m.is_stub:
            raise RefusedError(
                f"{_shown(settings, s)} is an unfinished stub",
                hint="write the corrected change and remove the BACKOUT-STUB line first",
            )
        require_clean(m, forward=True)
        steps.append((m, m.statements))
    return Plan("apply", target, tuple(steps))


def _apply_step(
    settings: Settings,
    target: Target,
    operator: Operator,
    migration: MigrationFile,
    statements: tuple[Statement, ...],
    schema_before: str | None = None,
) -> Step:
    table = settings.history_table(migration.folder)
    version = migration.version or ""

    def finish(conn: psycopg.Connection[Any], duration: int) -> None:
        record_applied(
            conn,
            table,
            Applied(
                version=version,
                name=migration.name,
                applied_at=datetime.now(UTC),
                applied_by=operator.name,
                checksum=migration.checksum,
                rollback_checksum=migration.rollback.checksum,
                execution_ms=duration,
                schema_before=schema_before,
            ),
        )

    return Step(
        migration=migration.name,
        version=version,
        direction="apply",
        statements=statements,
        history_table=table,
        finish=finish,
        audit=audit_event(target, operator, "apply", migration, table),
    )


def _recover(
    settings: Settings,
    target: Target,
    operator: Operator,
    runner: Runner,
    outcome: Outcome,
    report: Reporter,
) -> None:
    """``auto_rollback``: undo what this run applied, newest first, with the documented SQL."""
    by_name = {m.name: m for m, _ in outcome.plan.steps}
    for name in reversed(outcome.done):
        migration = by_name[name]
        report(f"auto_rollback: rolling back {name}")
        runner.run(
            rollback_step(
                settings, target, operator, migration, migration.rollback.statements, "rollback"
            )
        )
        outcome.recovered.append(name)


# --- baseline -------------------------------------------------------------------------------


def baseline(
    settings: Settings,
    target: Target,
    operator: Operator,
    *,
    to: str | None = None,
    dry_run: bool = False,
    options: RunOptions | None = None,
    confirm: Confirm = lambda _: True,
    cwd: Path | None = None,
) -> Outcome:
    """Mark pending migrations as applied without running them (a database migrated by hand)."""
    options = options or RunOptions()
    catalog = project_catalog(settings)
    limit = catalog.resolve(to, cwd or settings.root) if to else None
    with connect(target.url, autocommit=True) as conn:
        plan = _baseline_plan(settings, catalog, conn, target, limit)
        if dry_run or not plan.steps:
            return Outcome(plan)

        def replan() -> Plan:
            return _baseline_plan(settings, catalog, conn, target, limit)

        with guarded(settings, operator, conn, plan, replan, options, confirm) as (plan, runner):
            outcome = Outcome(plan)
            for migration, _ in plan.steps:
                step = _apply_step(settings, target, operator, migration, ())
                audit = audit_event(target, operator, "baseline", migration, step.history_table)
                runner.run(replace(step, audit=audit))
                outcome.done.append(migration.name)
    return outcome


def _baseline_plan(
    settings: Settings,
    catalog: Catalog,
    conn: psycopg.Connection[Any],
    target: Target,
    limit: Entry | None,
) -> Plan:
    states = compute_status(_folder_histories(settings, catalog, conn))
    steps = tuple(
        (s.migration, ())
        for s in states
        if s.migration is not None
        and s.state is State.PENDING
        and (limit is None or (s.folder == limit.folder and int(s.version) <= (limit.number or 0)))
    )
    return Plan("baseline", target, steps)


def rollback_step(
    settings: Settings,
    target: Target,
    operator: Operator,
    migration: MigrationFile,
    statements: tuple[Statement, ...],
    action: str,
) -> Step:
    table = settings.history_table(migration.folder)
    version = migration.version or ""
    return Step(
        migration=migration.name,
        version=version,
        direction="rollback",
        statements=statements,
        history_table=table,
        finish=lambda conn, _: remove_applied(conn, table, version),
        audit=audit_event(target, operator, action, migration, table),
    )


# --- shared -----------------------------------------------------------------------------------


@contextmanager
def guarded(
    settings: Settings,
    operator: Operator,
    conn: psycopg.Connection[Any],
    plan: Plan,
    replan: Callable[[], Plan],
    options: RunOptions,
    confirm: Confirm,
    report: Reporter = lambda _: None,
) -> Iterator[tuple[Plan, Runner]]:
    """What every change goes through before its first statement.

    Approval (where the environment requires it), confirmation, the migration lock, the
    history and audit tables, the plan made again under the lock (another run may have changed
    the database meanwhile), and the approval's audit row. Yields the plan and a runner.
    """
    check_approval(plan.target, operator)
    if not confirm(plan):
        raise RefusedError("not confirmed", hint="nothing was changed")
    with migration_lock(plan.target.url, wait=options.lock_wait) as lock_conn:
        for table in {settings.history_table(m.folder) for m, _ in plan.steps}:
            ensure_history(conn, table)
        ensure_audit(conn, settings.audit_table)
        plan = replan()
        runner = Runner(conn, lock_conn, settings.audit_table, options, report)
        record_approval(runner, settings, plan, operator)
        yield plan, runner


def record_approval(runner: Runner, settings: Settings, plan: Plan, operator: Operator) -> None:
    """The approval of ``plan``, audited before it runs (nothing when nobody approved)."""
    audit_approval(
        runner.conn,
        settings.audit_table,
        plan.target,
        plan.action,
        [m.name for m, _ in plan.steps],
        [s for _, group in plan.steps for s in group],
        operator,
    )


def audit_event(
    target: Target, operator: Operator, action: str, migration: MigrationFile, table: str
) -> AuditEvent:
    return AuditEvent(
        action=action,
        outcome="",
        environment=target.name,
        migration=migration.name,
        history_table=table,
        operator=operator.name,
        approver=operator.approved_by,
        reason=operator.reason,
        details={"checksum": migration.checksum, "path": migration.path.name},
    )


def log_decision(
    settings: Settings, target: Target, operator: Operator, verb: str, names: Sequence[str]
) -> None:
    if settings.decisions_log is None or target.environment is None or not names:
        return
    environment = target.environment.name
    decisions.append_decision(
        settings.decisions_log,
        decisions.Decision(
            date=datetime.now(UTC).date(),
            title=f"{verb} {', '.join(names)} on {environment}",
            context=operator.reason or f"{verb.lower()} with backout",
            decision=f"{verb} {', '.join(names)} on {environment} with backout",
            consequences="recorded in the history table and the audit trail",
            owner=operator.name
            + (f" (approved by {operator.approved_by})" if operator.approved_by else ""),
        ),
    )


def require_clean(migration: MigrationFile, *, forward: bool) -> None:
    problems = migration.problems if forward else migration.rollback.problems
    if problems:
        first = problems[0]
        raise MalformedMigrationError(
            migration.path, f"{first.code}: {first.message} (run `backout lint`)", line=first.line
        )


def _shown(settings: Settings, s: MigrationStatus) -> str:
    return settings.relative(s.path) if s.path else s.name
