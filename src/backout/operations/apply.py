"""``backout apply`` and ``backout baseline``: pending migrations, run or only recorded.

Both plan from :func:`backout.operations.status.read_states` and go through
:func:`backout.operations.operation.perform`. ``apply`` runs each migration in its own
transaction with its history row; on an ``auto_rollback`` environment a failure rolls back what
this run applied. ``baseline`` records migrations as applied without running them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from backout.config import Settings
from backout.database.connection import Target
from backout.database.histories.binding import Bound, entry_of, history_of
from backout.database.history import Applied
from backout.database.objects import ObjectKey, record_changes, snapshot
from backout.database.runner import Reporter, Runner, RunOptions, Step
from backout.errors import RefusedError
from backout.migrations.catalog import Catalog, Entry, executable_catalog
from backout.migrations.file import MigrationFile
from backout.migrations.statements import Statement
from backout.migrations.versions import version_key
from backout.operations.approval import Operator
from backout.operations.operation import (
    Confirm,
    Context,
    Outcome,
    Plan,
    audit_event,
    perform,
    require_clean,
    rollback_step,
)
from backout.operations.status import MigrationStatus, State, read_states
from backout.operations.verify import own_tables, schema_hash


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
    ctx = Context(settings, target, operator, options or RunOptions(), confirm, report)
    catalog = executable_catalog(settings)
    limit = catalog.resolve(to, cwd or settings.root) if to else None
    operation = _Apply(settings, catalog, target, limit, reapply)
    return perform(ctx, operation, dry_run=dry_run, skip_rehearsal=skip_rehearsal)


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
    ctx = Context(settings, target, operator, options or RunOptions(), confirm)
    catalog = executable_catalog(settings)
    limit = catalog.resolve(to, cwd or settings.root) if to else None
    return perform(ctx, _Baseline(settings, catalog, target, limit), dry_run=dry_run)


@dataclass(frozen=True)
class _Apply:
    settings: Settings
    catalog: Catalog
    target: Target
    limit: Entry | None
    reapply: Sequence[str]
    action = "apply"
    decision = "Applied"
    rehearsed = True
    smoke_checked = True

    def plan(self, conn: psycopg.Connection[Any]) -> Plan:
        states = read_states(self.settings, self.catalog, conn)
        for unversioned in (e for e in self.catalog.entries if e.version is None):
            require_clean(unversioned.read(), forward=True)  # lint's name-format: never applied
        _refuse_modified(self.settings, states)
        allowed = {self.catalog.resolve(r, self.settings.root).path for r in self.reapply}
        steps, skipped = [], []
        wanted = (State.PENDING, State.ROLLED_BACK, State.SUPERSEDED)
        for s in _pending(states, self.limit, *wanted):
            assert s.migration is not None
            if s.state is not State.PENDING and s.migration.path not in allowed:
                skipped.append(_skipped(s))
                continue
            _refuse_unready(self.settings, s)
            steps.append((s.migration, s.migration.statements))
        refuse_foreign(conn, self.settings, self.catalog, [m for m, _ in steps])
        return Plan("apply", self.target, tuple(steps), tuple(skipped))

    def preview(self, ctx: Context, conn: psycopg.Connection[Any], plan: Plan) -> Outcome:
        return Outcome(plan)

    def run(self, ctx: Context, plan: Plan, runner: Runner) -> Outcome:
        outcome = Outcome(plan)
        try:
            for migration, statements in plan.steps:
                count = f"{len(statements)} statement" + ("s" if len(statements) != 1 else "")
                ctx.report(f"applying {migration.name} ({count})")
                before = schema_hash(runner.conn, ctx.settings, migration)
                objects = snapshot(runner.conn, own_tables(ctx.settings))
                history = history_of(runner.conn, ctx.settings, self.catalog, migration.folder)
                step = apply_step(ctx, history, self.catalog, migration, statements)
                runner.run(step.recording(before, objects))
                outcome.done.append(migration.name)
        except Exception:
            if ctx.target.environment is not None and ctx.target.environment.auto_rollback:
                _recover(ctx, runner, self.catalog, outcome)
            raise
        return outcome


@dataclass(frozen=True)
class _Baseline:
    settings: Settings
    catalog: Catalog
    target: Target
    limit: Entry | None
    action = "baseline"
    decision = None
    rehearsed = False
    smoke_checked = False

    def plan(self, conn: psycopg.Connection[Any]) -> Plan:
        states = read_states(self.settings, self.catalog, conn)
        pending = _pending(states, self.limit, State.PENDING)
        steps = tuple((s.migration, ()) for s in pending if s.migration is not None)
        refuse_foreign(conn, self.settings, self.catalog, [m for m, _ in steps])
        return Plan("baseline", self.target, steps)

    def preview(self, ctx: Context, conn: psycopg.Connection[Any], plan: Plan) -> Outcome:
        return Outcome(plan)

    def run(self, ctx: Context, plan: Plan, runner: Runner) -> Outcome:
        outcome = Outcome(plan)
        for migration, _ in plan.steps:
            history = history_of(runner.conn, ctx.settings, self.catalog, migration.folder)
            step = replace(apply_step(ctx, history, self.catalog, migration, ()), action="baseline")
            runner.run(step.recording())
            outcome.done.append(migration.name)
        return outcome


def refuse_foreign(
    conn: psycopg.Connection[Any],
    settings: Settings,
    catalog: Catalog,
    migrations: Sequence[MigrationFile],
) -> None:
    """Refuse (exit 4) to apply to a folder whose history another tool keeps, unless the
    configuration says backout may (``history = "<tool>"``): applying stays the tool's job."""
    for folder in dict.fromkeys(m.folder for m in migrations):
        history = history_of(conn, settings, catalog, folder)
        if history.foreign and not history.configured:
            where = settings.relative(folder)
            raise RefusedError(
                f"{where}'s migrations are applied by {history.tool} (its {history.table} "
                "table says what is applied); nothing was changed",
                hint=f'use {history.tool}, or set history = "{history.tool}" in the '
                "configuration to let backout apply them",
            )


@dataclass(frozen=True)
class ApplyStep:
    """How one migration is applied and recorded in its folder's history."""

    ctx: Context
    history: Bound
    catalog: Catalog
    migration: MigrationFile
    statements: tuple[Statement, ...]
    action: str = "apply"

    def recording(
        self, schema_before: str | None = None, objects_before: frozenset[ObjectKey] | None = None
    ) -> Step:
        """The step: the statements, then the history row (the tool's way) and, given the
        objects before, what it created and removed, in the same transaction."""
        migration, table = self.migration, self.history.table
        version = migration.version or ""
        entry = entry_of(self.catalog, migration)

        def finish(conn: psycopg.Connection[Any], duration: int) -> None:
            applied = Applied(
                version=version,
                name=migration.name,
                applied_at=datetime.now(UTC),
                applied_by=self.ctx.operator.name,
                checksum=migration.checksum,
                rollback_checksum=migration.rollback.checksum,
                execution_ms=duration,
                schema_before=schema_before,
            )
            self.history.record_applied(
                conn, entry, self.catalog.in_folder(migration.folder), applied
            )
            if objects_before is not None:
                after = snapshot(conn, own_tables(self.ctx.settings))
                record_changes(conn, table, version, objects_before, after)

        return Step(
            migration=migration.name,
            version=version,
            direction="apply",
            statements=self.statements,
            history_table=table,
            finish=finish,
            audit=audit_event(self.ctx, self.action, migration, table),
            no_transaction=migration.no_transaction,
        )


def apply_step(
    ctx: Context,
    history: Bound,
    catalog: Catalog,
    migration: MigrationFile,
    statements: tuple[Statement, ...],
) -> ApplyStep:
    """Apply ``migration`` with ``statements``; :meth:`ApplyStep.recording` makes the step."""
    return ApplyStep(ctx, history, catalog, migration, statements)


def _recover(ctx: Context, runner: Runner, catalog: Catalog, outcome: Outcome) -> None:
    """``auto_rollback``: undo what this run applied, newest first, with the documented SQL."""
    by_name = {m.name: m for m, _ in outcome.plan.steps}
    for name in reversed(outcome.done):
        migration = by_name[name]
        ctx.report(f"auto_rollback: rolling back {name}")
        history = history_of(runner.conn, ctx.settings, catalog, migration.folder)
        statements = migration.rollback.statements
        runner.run(rollback_step(ctx, history, catalog, migration, statements, "rollback"))
        outcome.recovered.append(name)


def _pending(
    states: Sequence[MigrationStatus], limit: Entry | None, *wanted: State
) -> list[MigrationStatus]:
    """The migrations in one of the ``wanted`` states, up to ``limit`` (in its folder)."""
    return [
        s
        for s in states
        if s.migration is not None
        and s.state in wanted
        and (limit is None or (s.folder == limit.folder and version_key(s.version) <= limit.key))
    ]


def _refuse_modified(settings: Settings, states: Sequence[MigrationStatus]) -> None:
    modified = [s for s in states if s.state is State.MODIFIED]
    if modified:
        names = ", ".join(_shown(settings, s) for s in modified)
        raise RefusedError(
            f"applied migrations were modified since: {names}",
            hint="never edit an applied migration: restore it and fix forward with `backout new`",
        )


def _skipped(s: MigrationStatus) -> str:
    """Why a rolled-back migration is left out: it is never re-applied silently."""
    assert s.migration is not None
    how = ""
    if s.rolled_back is not None:
        how = f" ({s.rolled_back.action}, {s.rolled_back.at:%Y-%m-%d %H:%M} UTC)"
    instead = "superseded by its fix-forward; " if s.state is State.SUPERSEDED else ""
    return (
        f"skipped {s.migration.name}: rolled back{how} and not re-applied silently; "
        f"{instead}pass --reapply {s.migration.version} to run it again"
    )


def _refuse_unready(settings: Settings, s: MigrationStatus) -> None:
    """Refuse a stub or a file lint rejects."""
    m = s.migration
    assert m is not None
    if m.is_stub:
        raise RefusedError(
            f"{_shown(settings, s)} is an unfinished stub",
            hint="write the corrected change and remove the BACKOUT-STUB line first",
        )
    require_clean(m, forward=True)


def _shown(settings: Settings, s: MigrationStatus) -> str:
    return settings.relative(s.path) if s.path else s.name
