"""``backout rollback``: a planned (non-incident) rollback of one applied migration.

The documented rollback SQL (or ``--rollback-file``) runs in one step with the removal of the
migration's history row and its audit row. Refused when the migration is not applied, when no
rollback is documented, or when the ROLLBACK section changed since the migration was applied.
The functions that find the rollback SQL and refuse a changed section are the emergency's too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg

from backout.config import Settings
from backout.database.connection import Target, connect
from backout.database.histories import Recorded
from backout.database.histories.binding import applied_in, entry_of, history_of
from backout.database.history import Applied
from backout.database.runner import Reporter, Runner, RunOptions
from backout.errors import MalformedMigrationError, RefusedError, UsageError
from backout.git import file_diff_since
from backout.migrations.catalog import Catalog, Entry, project_catalog, resolved_entry
from backout.migrations.file import MigrationFile, read_migration
from backout.migrations.statements import Statement, referenced_tables
from backout.migrations.versions import version_key
from backout.operations.approval import Operator
from backout.operations.dry_run import dry_run as dry_run_on
from backout.operations.impact import measure, refuse_damage
from backout.operations.operation import (
    Confirm,
    Context,
    Outcome,
    Plan,
    perform,
    require_clean,
    rollback_step,
)
from backout.operations.verify import restoration


def rollback(
    settings: Settings,
    target: Target,
    operator: Operator,
    reference: str,
    *,
    rollback_file: Path | None = None,
    use_current_rollback: bool = False,
    dry_run: bool = False,
    options: RunOptions | None = None,
    confirm: Confirm = lambda _: True,
    report: Reporter = lambda _: None,
    cwd: Path | None = None,
    skip_rehearsal: str | None = None,
    accept_damage: bool = False,
) -> Outcome:
    """Roll back one applied migration with its documented SQL, removing its history row.

    Refused (exit 4) before anything runs when it would fail on a dependency, or remove what
    other applied migrations created, unless ``accept_damage`` (recorded in the audit row)."""
    asked = Asked(rollback_file, use_current_rollback, dry_run, accept_damage, skip_rehearsal)
    return rollback_as_asked(
        settings,
        target,
        operator,
        reference,
        asked,
        options=options,
        confirm=confirm,
        report=report,
        cwd=cwd,
    )


def rollback_as_asked(
    settings: Settings,
    target: Target,
    operator: Operator,
    reference: str,
    asked: Asked,
    *,
    options: RunOptions | None = None,
    confirm: Confirm = lambda _: True,
    report: Reporter = lambda _: None,
    cwd: Path | None = None,
) -> Outcome:
    """:func:`rollback`, its options given as one :class:`Asked`."""
    ctx = Context(settings, target, operator, options or RunOptions(), confirm, report)
    catalog, entry = resolved_entry(settings, reference, cwd)
    return rollback_entry(ctx, catalog, entry, asked)


@dataclass(frozen=True)
class Asked:
    """How a planned rollback was asked for: the options of ``backout rollback``."""

    rollback_file: Path | None = None
    use_current_rollback: bool = False
    dry_run: bool = False
    accept_damage: bool = False
    skip_rehearsal: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    """More for the audit row's details (a fleet's name and the target's)."""


def rollback_entry(ctx: Context, catalog: Catalog, entry: Entry, asked: Asked) -> Outcome:
    """Roll back the migration ``entry`` of ``catalog`` on ``ctx.target``, as asked."""
    operation = _operation(ctx, catalog, entry, asked)
    return perform(ctx, operation, dry_run=asked.dry_run, skip_rehearsal=asked.skip_rehearsal)


def plan_rollback(ctx: Context, catalog: Catalog, entry: Entry, asked: Asked) -> Plan:
    """What :func:`rollback_entry` would confirm on ``ctx.target`` (its refusals included),
    read from the database; nothing is changed."""
    with connect(ctx.target.url, autocommit=True, lock_timeout=ctx.options.lock_timeout) as conn:
        return _operation(ctx, catalog, entry, asked).plan(conn)


def _operation(ctx: Context, catalog: Catalog, entry: Entry, asked: Asked) -> _Rollback:
    return _Rollback(
        ctx.settings,
        catalog,
        ctx.target,
        entry,
        asked.rollback_file,
        asked.use_current_rollback,
        check_damage=not asked.dry_run,
        accept_damage=asked.accept_damage,
        details=asked.details,
    )


@dataclass(frozen=True)
class _Rollback:
    settings: Settings
    catalog: Catalog
    target: Target
    entry: Entry
    rollback_file: Path | None
    use_current_rollback: bool
    check_damage: bool = True
    accept_damage: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)
    action = "rollback"
    decision = "Rolled back"
    rehearsed = True
    smoke_checked = True

    def plan(self, conn: psycopg.Connection[Any]) -> Plan:
        history = history_of(conn, self.settings, self.catalog, self.entry.folder)
        migration = self.entry.read()
        recorded = history.read(conn, self.catalog.in_folder(self.entry.folder))
        troubles = refuse_troubles(recorded, history.tool, migration)
        applied = recorded.applied.get(migration.version or "")
        if applied is None:
            raise RefusedError(
                f"{migration.name} is not applied in {self.target.name}",
                hint="`backout status` shows what is applied",
            )
        statements = rollback_statements_of(migration, self.rollback_file)
        history.check_rollback(
            conn, entry_of(self.catalog, migration), self.catalog.in_folder(migration.folder)
        )
        if self.rollback_file is None and not self.use_current_rollback:
            refuse_changed_rollback(migration, applied)
        warnings = troubles + _later_overlaps(self.catalog, conn, self.settings, migration)
        blast = measure(conn, self.settings, self.catalog, migration, statements)
        accepted: dict[str, list[str]] = {}
        if self.check_damage:
            accepted = refuse_damage(blast, self.target, accepted=self.accept_damage)
        steps = ((migration, statements),)
        return Plan("rollback", self.target, steps, warnings, blast, accepted)

    def preview(self, ctx: Context, conn: psycopg.Connection[Any], plan: Plan) -> Outcome:
        return Outcome(plan, done=dry_run_on(conn, plan.steps[0][1], ctx.waits))

    def run(self, ctx: Context, plan: Plan, runner: Runner) -> Outcome:
        migration, statements = plan.steps[0]
        before, later = recorded_schema(runner.conn, ctx.settings, self.catalog, migration)
        history = history_of(runner.conn, ctx.settings, self.catalog, migration.folder)
        step = rollback_step(ctx, history, self.catalog, migration, statements, "rollback")
        damage = {"accepted_damage": dict(plan.accepted_damage)} if plan.accepted_damage else {}
        if damage or self.details:
            details = {**step.audit.details, **damage, **self.details}
            step = replace(step, audit=replace(step.audit, details=details))
        runner.run(step)
        check = restoration(runner.conn, ctx.settings, migration, before, later)
        return Outcome(plan, done=[migration.name], schema_check=check)


def refuse_troubles(recorded: Recorded, tool: str, migration: MigrationFile) -> tuple[str, ...]:
    """Refuse (exit 4) to roll back a migration its tool recorded as failed or half-applied
    (saying what the table says and the safe way out; backout never clears such a state);
    the troubles about other migrations, as warnings."""
    mine = (migration.name, migration.version)
    for trouble in recorded.troubles:
        if trouble.migration in mine:
            raise RefusedError(
                f"{tool}'s history table says: {trouble.what}; nothing was changed",
                hint=trouble.way_out,
            )
    return tuple(f"{tool}'s history table says: {t.describe()}" for t in recorded.troubles)


def refuse_changed_rollback(migration: MigrationFile, applied: Applied) -> None:
    """Refuse to run a ROLLBACK section that changed since ``migration`` was applied."""
    if applied.rollback_checksum in (None, migration.rollback.checksum):
        return
    refusal = RefusedError(
        f"the ROLLBACK section of {migration.name} changed since it was applied",
        hint="check the difference, then pass --use-current-rollback to run it",
    )
    if applied.applied_at is not None:
        refusal.evidence = file_diff_since(
            migration.rollback.path or migration.path, applied.applied_at
        )
    raise refusal


def recorded_schema(
    conn: psycopg.Connection[Any], settings: Settings, catalog: Catalog, migration: MigrationFile
) -> tuple[str | None, int]:
    """The schema hash recorded when ``migration`` was applied, and how many migrations of its
    folder were applied after it (they may explain a difference)."""
    history = applied_in(conn, settings, catalog, migration.folder)
    applied = history.get(migration.version or "")
    later = sum(1 for version in history if version_key(version) > version_key(migration.version))
    return (applied.schema_before if applied else None), later


def rollback_sql(
    settings: Settings, reference: str, rollback_file: Path | None, cwd: Path
) -> tuple[Statement, ...]:
    """The statements ``rollback`` would run (``--print-sql``). Reads no database."""
    migration = project_catalog(settings).resolve(reference, cwd).read()
    return rollback_statements_of(migration, rollback_file)


def rollback_statements_of(
    migration: MigrationFile,
    rollback_file: Path | None,
    *,
    missing: type[RefusedError] | type[UsageError] = RefusedError,
) -> tuple[Statement, ...]:
    """The statements that undo ``migration``: ``rollback_file``'s, or its documented ones.

    No documented rollback raises ``missing`` (a refusal for a planned rollback, a usage error
    for the emergency, which must say how to proceed).
    """
    if rollback_file is not None:
        replacement = read_migration(rollback_file)
        if replacement.problems:
            first = replacement.problems[0]
            raise MalformedMigrationError(
                rollback_file, f"{first.code}: {first.message}", line=first.line
            )
        if not replacement.statements:
            raise UsageError(
                f"{rollback_file} holds no SQL statement PostgreSQL accepts",
                hint="check it with `backout lint` syntax rules",
            )
        return replacement.statements
    require_clean(migration, forward=False)
    if not migration.rollback.statements:
        raise missing(
            f"{migration.name} documents no rollback SQL",
            hint="write the SQL that undoes it into a file and pass --rollback-file FILE",
        )
    return migration.rollback.statements


def _later_overlaps(
    catalog: Catalog, conn: psycopg.Connection[Any], settings: Settings, migration: MigrationFile
) -> tuple[str, ...]:
    """Warnings: later applied migrations of the same folder that touch the same tables."""
    words = referenced_tables(migration.statements)
    applied = applied_in(conn, settings, catalog, migration.folder)
    warnings = []
    for entry in catalog.in_folder(migration.folder):
        if entry.key <= version_key(migration.version) or entry.version not in applied:
            continue
        later = entry.read()
        shared = words & referenced_tables(later.statements)
        if shared:
            warnings.append(
                f"{later.name} is applied after it and also touches {', '.join(sorted(shared))}"
            )
    return tuple(warnings)
