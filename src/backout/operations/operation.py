"""The one skeleton every change to a database goes through: apply, baseline, rollback and the
emergency's rollback step.

An operation plans from the database, shows or confirms its :class:`Plan`, and runs its steps
through :func:`guarded`: approval, confirmation, the migration lock, the history and audit
tables, the plan made again under the lock, the approval's audit row. :func:`perform` is that
whole sequence for the planned commands (dry run, rehearsal gate, smoke checks, decisions log);
the emergency composes the same pieces as named steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg

from backout.config import Settings
from backout.database.connection import Target, connect
from backout.database.histories.binding import Bound, bind, entry_of
from backout.database.history import AuditEvent, ensure_audit
from backout.database.lock import migration_lock
from backout.database.objects import ensure_objects, forget
from backout.database.runner import Reporter, Runner, RunOptions, Step
from backout.database.waits import Waits, Watch
from backout.errors import RefusedError
from backout.migrations.catalog import Catalog
from backout.migrations.file import MigrationFile
from backout.migrations.lint import require_runnable
from backout.migrations.statements import Statement
from backout.operations.approval import Operator, audit_approval, check_approval
from backout.operations.impact import BlastRadius
from backout.operations.rehearsal import gate
from backout.operations.smoke import SmokeResult, audit_smoke, run_smoke_checks
from backout.postmortems import decisions


@dataclass(frozen=True)
class Plan:
    """What a command is about to run, shown for confirmation and by ``--dry-run``."""

    action: str
    target: Target
    steps: tuple[tuple[MigrationFile, tuple[Statement, ...]], ...]
    warnings: tuple[str, ...] = ()
    blast: BlastRadius | None = None
    """For a rollback: what it locks, removes and waits for (measured before it runs)."""
    accepted_damage: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Objects of other migrations the operator accepted to remove (``--accept-damage``)."""

    @property
    def confirm_word(self) -> str:
        """What the operator types to confirm: the last migration's version."""
        return self.steps[-1][0].version or self.steps[-1][0].name if self.steps else ""

    @property
    def names(self) -> list[str]:
        return [m.name for m, _ in self.steps]


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


@dataclass(frozen=True)
class Context:
    """What every operation is given: the project, the database, who runs it, how carefully."""

    settings: Settings
    target: Target
    operator: Operator
    options: RunOptions = field(default_factory=RunOptions)
    confirm: Confirm = lambda _: True
    report: Reporter = lambda _: None

    @property
    def waits(self) -> Waits:
        """How this operation waits for table locks outside a runner (dry runs, backups)."""
        return Waits(self.options, self.report)


class Operation(Protocol):
    """A planned change: how it plans, what its dry run shows, how it runs under the lock."""

    @property
    def action(self) -> str:
        """The audit action and the smoke checks' label: ``apply``, ``rollback``..."""

    @property
    def decision(self) -> str | None:
        """The decisions log's verb (``Applied``), or None when the change is not logged."""

    @property
    def rehearsed(self) -> bool:
        """Whether an environment that requires approval rehearses it on a scratch database."""

    @property
    def smoke_checked(self) -> bool:
        """Whether the project's smoke checks run after it."""

    def plan(self, conn: psycopg.Connection[Any]) -> Plan: ...

    def preview(self, ctx: Context, conn: psycopg.Connection[Any], plan: Plan) -> Outcome: ...

    def run(self, ctx: Context, plan: Plan, runner: Runner) -> Outcome: ...


def perform(
    ctx: Context, operation: Operation, *, dry_run: bool, skip_rehearsal: str | None = None
) -> Outcome:
    """Plan, preview or rehearse, then run ``operation`` guarded, with its smoke checks."""
    with connect(ctx.target.url, autocommit=True, lock_timeout=ctx.options.lock_timeout) as conn:
        plan = operation.plan(conn)
        if dry_run or not plan.steps:
            return operation.preview(ctx, conn, plan)
        if operation.rehearsed:
            change = (plan.action, [m for m, _ in plan.steps])
            operator = gate(ctx.settings, conn, ctx.target, ctx.operator, change, skip_rehearsal)
            ctx = replace(ctx, operator=operator)
        with guarded(ctx, conn, plan, lambda: operation.plan(conn)) as (plan, runner):
            outcome = operation.run(ctx, plan, runner)
            if operation.smoke_checked:
                outcome.smoke = smoke_after(ctx, conn, operation.action, outcome.done)
    if operation.decision is not None:
        log_decision(ctx, operation.decision, outcome.done)
    return outcome


@contextmanager
def guarded(
    ctx: Context,
    conn: psycopg.Connection[Any],
    plan: Plan,
    replan: Callable[[], Plan],
) -> Iterator[tuple[Plan, Runner]]:
    """What every change goes through before its first statement.

    Approval (where the environment requires it), confirmation, the migration lock (taken on
    ``conn``, the connection that runs the change: losing it ends the change), the history and
    audit tables, the plan made again under the lock (another run may have changed the
    database meanwhile), and the approval's audit row. Yields the plan and a runner.
    """
    approve_and_confirm(ctx, plan)
    with migration_lock(conn, wait=ctx.options.lock_wait), Watch(conn) as watch:
        folders = {m.folder: m.format for m, _ in plan.steps}
        for folder, format_name in folders.items():
            bind(conn, ctx.settings, folder, format_name).ensure(conn)
        ensure_audit(conn, ctx.settings.audit_table)
        ensure_objects(conn)
        plan = replan()
        runner = Runner(conn, watch, ctx.settings.audit_table, ctx.options, ctx.report)
        record_approval(ctx, runner, plan)
        yield plan, runner


def approve_and_confirm(ctx: Context, plan: Plan) -> None:
    """Approval where the environment requires it, then the operator's confirmation."""
    check_approval(plan.target, ctx.operator)
    if not ctx.confirm(plan):
        raise RefusedError("not confirmed", hint="nothing was changed")


def record_approval(ctx: Context, runner: Runner, plan: Plan) -> None:
    """The approval of ``plan``, audited before it runs (nothing when nobody approved)."""
    audit_approval(
        runner.conn,
        ctx.settings.audit_table,
        plan.target,
        plan.action,
        plan.names,
        [s for _, group in plan.steps for s in group],
        ctx.operator,
    )


def rollback_step(
    ctx: Context,
    history: Bound,
    catalog: Catalog,
    migration: MigrationFile,
    statements: tuple[Statement, ...],
    action: str,
) -> Step:
    """Undo ``migration`` with ``statements``, recording it rolled back in its history (the
    way the tool that keeps it does) in the same transaction."""
    table = history.table
    version = migration.version or ""
    entry, entries = entry_of(catalog, migration), catalog.in_folder(migration.folder)

    def finish(conn: psycopg.Connection[Any], _: int) -> None:
        history.record_rolled_back(conn, entry, entries)
        forget(conn, table, version)  # what it created: no longer applied

    return Step(
        migration=migration.name,
        version=version,
        direction="rollback",
        statements=statements,
        history_table=table,
        finish=finish,
        audit=audit_event(ctx, action, migration, table),
        # the format's "no transaction" is the documented section's, not a --rollback-file's
        no_transaction=migration.rollback.no_transaction
        and statements == migration.rollback.statements,
    )


def audit_event(ctx: Context, action: str, migration: MigrationFile, table: str) -> AuditEvent:
    """The audit row of ``action`` on ``migration``, before the runner adds how it went."""
    operator = ctx.operator
    return AuditEvent(
        action=action,
        outcome="",
        environment=ctx.target.name,
        migration=migration.name,
        history_table=table,
        operator=operator.name,
        approver=operator.approved_by,
        reason=operator.reason,
        details={"checksum": migration.checksum, "path": migration.path.name},
    )


def smoke_after(
    ctx: Context, conn: psycopg.Connection[Any], action: str, migrations: Sequence[str]
) -> list[SmokeResult]:
    """The project's smoke checks after ``action``, audited."""
    results = run_smoke_checks(conn, ctx.settings.smoke_checks)
    audit_smoke(
        conn, ctx.settings.audit_table, ctx.target, ctx.operator, action, migrations, results
    )
    return results


def log_decision(ctx: Context, verb: str, names: Sequence[str]) -> None:
    """One dated entry in the decisions log, for a change on a named environment."""
    settings, target, operator = ctx.settings, ctx.target, ctx.operator
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
    """Refuse, before anything runs, a migration lint says cannot be run as it is.

    ``forward`` (apply): a bad name, an empty forward section, SQL PostgreSQL rejects,
    transaction control, or a rollback section that does not parse; otherwise (a rollback):
    any problem in its rollback section. The one-line error names the file and the line.
    """
    require_runnable(migration, forward=forward)
