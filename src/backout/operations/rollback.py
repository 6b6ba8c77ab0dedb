"""``backout rollback``: a planned (non-incident) rollback of one applied migration.

The documented rollback SQL (or ``--rollback-file``) runs in one step with the removal of the
migration's history row and its audit row. Refused when the migration is not applied, when no
rollback is documented, or when the ROLLBACK section changed since the migration was applied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from backout.config import Settings
from backout.database.connection import DatabaseError, Target, connect, first_line
from backout.database.history import read_history
from backout.database.runner import Reporter, RunOptions
from backout.errors import RefusedError, UsageError
from backout.git import file_diff_since
from backout.migrations.catalog import Catalog, Entry, project_catalog
from backout.migrations.file import MigrationFile, read_migration
from backout.migrations.statements import Statement, referenced_tables
from backout.operations.approval import Operator
from backout.operations.lifecycle import (
    Confirm,
    Outcome,
    Plan,
    guarded,
    log_decision,
    require_clean,
    rollback_step,
    smoke_after,
)
from backout.operations.rehearsal import gate
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
) -> Outcome:
    """Roll back one applied migration with its documented SQL, removing its history row."""
    options = options or RunOptions()
    catalog = project_catalog(settings)
    entry = catalog.resolve(reference, cwd or settings.root)
    with connect(target.url, autocommit=True) as conn:
        plan = _rollback_plan(
            settings, catalog, conn, target, entry, rollback_file, use_current_rollback
        )
        if dry_run:
            return rehearse(conn, plan)

        def replan() -> Plan:
            return _rollback_plan(
                settings, catalog, conn, target, entry, rollback_file, use_current_rollback
            )

        operator = gate(settings, target, operator, [m.name for m, _ in plan.steps], skip_rehearsal)
        with guarded(settings, operator, conn, plan, replan, options, confirm, report) as (
            plan,
            runner,
        ):
            migration, statements = plan.steps[0]
            before, later = recorded_schema(conn, settings, migration)
            runner.run(rollback_step(settings, target, operator, migration, statements, "rollback"))
            check = restoration(conn, settings, migration, before, later)
            smoke = smoke_after(settings, conn, target, operator, "rollback", [migration.name])
    outcome = Outcome(plan, done=[migration.name], schema_check=check, smoke=smoke)
    log_decision(settings, target, operator, "Rolled back", outcome.done)
    return outcome


def recorded_schema(
    conn: psycopg.Connection[Any], settings: Settings, migration: MigrationFile
) -> tuple[str | None, int]:
    """The schema hash recorded when ``migration`` was applied, and how many migrations of its
    folder were applied after it (they may explain a difference)."""
    history = read_history(conn, settings.history_table(migration.folder))
    applied = history.get(migration.version or "")
    later = sum(1 for version in history if version > (migration.version or ""))
    return (applied.schema_before if applied else None), later


def _rollback_plan(
    settings: Settings,
    catalog: Catalog,
    conn: psycopg.Connection[Any],
    target: Target,
    entry: Entry,
    rollback_file: Path | None,
    use_current_rollback: bool,
) -> Plan:
    table = settings.history_table(entry.folder)
    migration = entry.read()
    applied = read_history(conn, table).get(migration.version or "")
    if applied is None:
        raise RefusedError(
            f"{migration.name} is not applied in {target.name}",
            hint="`backout status` shows what is applied",
        )
    statements = rollback_statements_of(migration, rollback_file)
    changed = applied.rollback_checksum not in (None, migration.rollback.checksum)
    if rollback_file is None and changed and not use_current_rollback:
        refusal = RefusedError(
            f"the ROLLBACK section of {migration.name} changed since it was applied",
            hint="check the difference, then pass --use-current-rollback to run it",
        )
        refusal.evidence = file_diff_since(migration.path, applied.applied_at)
        raise refusal
    return Plan(
        "rollback",
        target,
        ((migration, statements),),
        _later_overlaps(catalog, conn, settings, migration),
    )


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
        if replacement.problems or not replacement.statements:
            raise UsageError(
                f"{rollback_file} holds no SQL statement PostgreSQL accepts",
                hint="check it with `backout lint` syntax rules",
            )
        return replacement.statements
    if not migration.rollback.statements:
        raise missing(
            f"{migration.name} documents no rollback SQL",
            hint="write the SQL that undoes it into a file and pass --rollback-file FILE",
        )
    require_clean(migration, forward=False)
    return migration.rollback.statements


def rehearse(conn: psycopg.Connection[Any], plan: Plan) -> Outcome:
    """``--dry-run``: run the statements in a transaction that is always rolled back."""
    outcome = Outcome(plan)
    _, statements = plan.steps[0]
    try:
        with conn.transaction(force_rollback=True):
            for statement in statements:
                try:
                    with conn.transaction():  # a savepoint: a failure does not hide the rest
                        conn.execute(statement.sql)
                    outcome.done.append(
                        f"ok      line {statement.line}: {' '.join(statement.sql.split())}"
                    )
                except psycopg.Error as exc:
                    message = exc.diag.message_primary or first_line(exc)
                    outcome.done.append(f"FAILED  line {statement.line}: {message}")
    except psycopg.Error as exc:
        raise DatabaseError(f"the dry run could not finish: {first_line(exc)}") from None
    return outcome


def _later_overlaps(
    catalog: Catalog, conn: psycopg.Connection[Any], settings: Settings, migration: MigrationFile
) -> tuple[str, ...]:
    """Warnings: later applied migrations of the same folder that touch the same tables."""
    words = referenced_tables(migration.statements)
    applied = read_history(conn, settings.history_table(migration.folder))
    warnings = []
    for entry in catalog.in_folder(migration.folder):
        if (entry.number or 0) <= (migration.number or 0) or entry.version not in applied:
            continue
        later = entry.read()
        shared = words & referenced_tables(later.statements)
        if shared:
            warnings.append(
                f"{later.name} is applied after it and also touches {', '.join(sorted(shared))}"
            )
    return tuple(warnings)
