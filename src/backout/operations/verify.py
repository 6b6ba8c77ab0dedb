"""``backout verify``: apply, roll back and apply again on a scratch database, proving each
rollback restores the schema.

For each migration in order: fingerprint, apply, fingerprint, roll back, fingerprint (must
equal the first), apply again (must equal the second). The database moves forward one
migration at a time and is never rebuilt, so the cost is linear in the number of migrations.
A rollback documented as irreversible is reported as such, not as a failure.
:func:`verify_rollback` rehearses one rollback on what a target has: the migrations its history
records, replayed forward in order, then that one rolled back and applied again. The scratch
database is the caller's: :mod:`backout.database.scratch` makes one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg

from backout.config import Settings
from backout.database.fingerprint import Change, Fingerprint, fingerprint, scope_of
from backout.database.histories import TOOL_TABLES
from backout.database.history import JOURNAL_TABLE
from backout.database.objects import OBJECTS_TABLE
from backout.errors import BackoutError
from backout.migrations.catalog import Entry
from backout.migrations.file import MigrationFile
from backout.migrations.lint import IRREVERSIBLE, require_runnable
from backout.migrations.statements import Statement, referenced_tables

OK = "ok"
FAILED = "failed"
IRREVERSIBLE_OUTCOME = "irreversible"
SKIPPED = "skipped"

Progress = Callable[[int, int, str], None]
"""Called before each migration with (done, total, name)."""


@dataclass(frozen=True)
class Verdict:
    """What verifying one migration showed."""

    migration: str
    outcome: str
    """``ok``, ``failed``, ``irreversible`` (documented) or ``skipped`` (an earlier one broke)."""
    left_behind: tuple[Change, ...] = ()
    """After the rollback: what differs from the schema before the migration."""
    not_reapplied: tuple[Change, ...] = ()
    """After applying again: what differs from the first apply."""
    error: str | None = None
    """``<stage> line N: message`` when a statement failed."""
    ms: int = 0
    schema_before: str | None = None
    """The SHA-256 of the fingerprint before the migration."""
    created: tuple[Change, ...] = ()
    """What applying it changed: the objects it adds, removes or alters."""

    def problems(self) -> list[str]:
        """What went wrong, in the order it happened."""
        left = [f"rollback left: {c.describe()}" for c in self.left_behind]
        error = [self.error] if self.error else []
        late = self.error is not None and self.error.startswith("apply again")
        out = left + error if late else error + left
        return out + [f"apply again differs: {c.describe()}" for c in self.not_reapplied]


@dataclass
class Report:
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(v.outcome in (FAILED, SKIPPED) for v in self.verdicts)


class _StepFailed(Exception):
    def __init__(self, stage: str, statement: Statement, exc: psycopg.Error) -> None:
        message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        sqlstate = getattr(exc, "sqlstate", None)
        super().__init__(
            f"{stage} failed at line {statement.line}: {message}"
            + (f" (SQLSTATE {sqlstate})" if sqlstate else "")
        )


def verify(
    settings: Settings,
    conn: psycopg.Connection[Any],
    entries: Sequence[Entry],
    *,
    progress: Progress | None = None,
) -> Report:
    """Verify ``entries`` in order on the scratch database ``conn`` (autocommit)."""
    ignore = own_tables(settings)
    # The fingerprint is one prepared query run four times per migration: plan it once.
    conn.execute("SET plan_cache_mode = force_generic_plan")
    report = Report()
    broken = False
    for number, entry in enumerate(entries):
        if progress is not None:
            progress(number, len(entries), entry.name)
        if broken:
            report.verdicts.append(Verdict(entry.name, SKIPPED, error="an earlier one failed"))
            continue
        started = time.perf_counter()
        verdict, broken = _verify_one(conn, entry, ignore)
        report.verdicts.append(replace(verdict, ms=round((time.perf_counter() - started) * 1000)))
    if progress is not None:
        progress(len(entries), len(entries), "")
    return report


def _verify_one(
    conn: psycopg.Connection[Any], entry: Entry, ignore: set[str]
) -> tuple[Verdict, bool]:
    """One migration: its verdict, and whether the run must stop there.

    The fingerprints read the relations the migration names and those whose foreign keys
    reference them (what a ``CASCADE`` reaches), with the database's schemas, functions,
    sequences, types and extensions: each step's cost does not grow with the number of
    migrations before it, so the whole run stays linear.
    """
    try:
        migration = entry.read()
        require_runnable(migration, forward=True)
    except BackoutError as exc:
        return Verdict(entry.name, FAILED, error=str(exc)), True
    scope = migration_scope(conn, migration)

    def snapshot() -> Fingerprint:
        return fingerprint(conn, ignore_tables=ignore, scope=scope)

    before = snapshot()
    try:
        _run(conn, migration.statements, "apply")
    except _StepFailed as exc:
        return Verdict(migration.name, FAILED, error=str(exc), schema_before=before.sha256), True
    applied = snapshot()
    verdict, stop = _undo_and_redo(
        conn,
        migration,
        left=lambda: tuple(before.diff(snapshot())),
        differs=lambda: tuple(applied.diff(snapshot())),
    )
    created = tuple(before.diff(applied))
    return replace(verdict, schema_before=before.sha256, created=created), stop


def replay(conn: psycopg.Connection[Any], entries: Sequence[Entry]) -> str | None:
    """Apply ``entries`` in order, forward only, as the database that has them did; the first
    failure (``<migration>: <what failed>``), or ``None``."""
    for entry in entries:
        try:
            _run(conn, entry.read().statements, "apply")
        except (BackoutError, _StepFailed) as exc:
            return f"{entry.name}: {exc}"
    return None


def verify_rollback(
    settings: Settings,
    conn: psycopg.Connection[Any],
    applied: Sequence[Entry],
    entry: Entry,
) -> Verdict:
    """Apply ``applied`` in order on the scratch database ``conn`` (what a target has,
    ``entry`` among them), then roll ``entry`` back and apply it again.

    The rollback must restore what was there before ``entry`` was applied, except the objects
    the migrations applied after it changed (theirs, not its); applying it again must give
    back the schema from before the rollback. The whole schema is compared: one migration is
    rolled back, so there is no per-migration cost to bound.
    """
    ignore = own_tables(settings)
    started = time.perf_counter()

    def snapshot() -> Fingerprint:
        return fingerprint(conn, ignore_tables=ignore)

    position = list(applied).index(entry)
    failure = replay(conn, applied[:position])
    before = snapshot()
    failure = failure or replay(conn, [entry])
    after = snapshot()
    failure = failure or replay(conn, applied[position + 1 :])
    if failure is not None:
        return Verdict(entry.name, SKIPPED, error=f"replaying the target's migrations: {failure}")
    whole = snapshot()
    later = {(c.kind, c.name) for c in after.diff(whole)}
    verdict, _ = _undo_and_redo(
        conn,
        entry.read(),
        left=lambda: tuple(c for c in before.diff(snapshot()) if (c.kind, c.name) not in later),
        differs=lambda: tuple(whole.diff(snapshot())),
    )
    elapsed = round((time.perf_counter() - started) * 1000)
    created = tuple(before.diff(after))
    return replace(verdict, ms=elapsed, schema_before=before.sha256, created=created)


def _undo_and_redo(
    conn: psycopg.Connection[Any],
    migration: MigrationFile,
    *,
    left: Callable[[], tuple[Change, ...]],
    differs: Callable[[], tuple[Change, ...]],
) -> tuple[Verdict, bool]:
    """Roll back, then apply again: ``left`` says what the rollback left (it must leave
    nothing), ``differs`` how applying again differs from the first apply (it must not)."""
    name = migration.name
    if not migration.rollback.statements:
        if _documented_irreversible(migration):
            return Verdict(name, IRREVERSIBLE_OUTCOME), False
        return Verdict(name, FAILED, error="no rollback SQL is documented"), False
    try:
        _run(conn, migration.rollback.statements, "rollback")
    except _StepFailed as exc:  # its transaction rolled back: still applied, go on from there
        return Verdict(name, FAILED, error=str(exc)), False
    left_behind = left()
    try:
        _run(conn, migration.statements, "apply again")
    except _StepFailed as exc:
        return Verdict(name, FAILED, left_behind, error=str(exc)), True
    not_again = differs()
    outcome = OK if not left_behind and not not_again else FAILED
    return Verdict(name, outcome, left_behind, not_again), False


def own_tables(settings: Settings) -> set[str]:
    """backout's own tables, which no fingerprint includes."""
    return {settings.audit_table, JOURNAL_TABLE, OBJECTS_TABLE, *TOOL_TABLES} | {
        settings.history_table(folder) for folder in settings.migrations
    }


def migration_scope(conn: psycopg.Connection[Any], migration: MigrationFile) -> set[str]:
    """The relations a migration's forward and rollback SQL name, and those whose foreign keys
    reference them."""
    return scope_of(
        conn, referenced_tables((*migration.statements, *migration.rollback.statements))
    )


def schema_hash(conn: psycopg.Connection[Any], settings: Settings, migration: MigrationFile) -> str:
    """The SHA-256 of the schema around ``migration``: stored when it is applied, compared
    after it is rolled back."""
    scope = migration_scope(conn, migration)
    return fingerprint(conn, ignore_tables=own_tables(settings), scope=scope).sha256


def restoration(
    conn: psycopg.Connection[Any],
    settings: Settings,
    migration: MigrationFile,
    before: str | None,
    later: int = 0,
) -> str:
    """After a rollback: whether the schema around ``migration`` is what it was before it was
    applied, as one sentence."""
    if before is None:
        return f"not checked: no schema was recorded when {migration.name} was applied"
    if schema_hash(conn, settings, migration) == before:
        return f"the schema is back to what it was before {migration.name} was applied"
    why = f"; {later} later migration(s) are applied, which may explain it" if later else ""
    return (
        f"the schema differs from what it was before {migration.name} was applied{why}: "
        "`backout verify` shows what its rollback leaves"
    )


def _documented_irreversible(migration: MigrationFile) -> bool:
    return any(IRREVERSIBLE.search(note) for note in migration.rollback.notes)


def _run(conn: psycopg.Connection[Any], statements: Sequence[Statement], stage: str) -> None:
    """``statements`` in one transaction, or one by one when one cannot run in a transaction."""
    if any(s.non_transactional_reason for s in statements):
        for statement in statements:
            _execute(conn, statement, stage)
        return
    try:
        with conn.transaction():
            for statement in statements:
                _execute(conn, statement, stage)
    except psycopg.Error as exc:  # COMMIT itself failed (a deferred constraint)
        raise _StepFailed(stage, statements[-1], exc) from None


def _execute(conn: psycopg.Connection[Any], statement: Statement, stage: str) -> None:
    try:
        conn.execute(statement.sql)
    except psycopg.Error as exc:
        raise _StepFailed(stage, statement, exc) from None
