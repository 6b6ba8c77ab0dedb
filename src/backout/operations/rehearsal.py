"""Rehearse before production: a change, on a scratch database that has what the target has.

A rollback is rehearsed on what the target's history tables record as applied: every folder's
applied migrations, replayed forward in the order they were applied (ties: the folders' order
in the configuration, then versions), then the migration rolled back with its documented
rollback and applied again (:func:`backout.operations.verify.verify_rollback`). A rolled-back
migration has no history row, so it is not replayed. A migration the history lists but this
checkout has no file for would make the scratch database differ from the target: the
rehearsal does not run and names it. When the target's history does not list the migration
(``emergency --assume-applied``), its folder up to it is verified alone, and the line says so.

An apply is rehearsed on what the target has plus the pending migrations, each applied,
rolled back and applied again in the order ``apply`` runs them.

``apply`` and ``rollback`` on an environment that requires approval call :func:`gate` before
they take the lock: the change is refused (exit 4) when the rehearsal fails or cannot run,
unless the operator skips it with a reason; either way the result goes into the approval's
audit row. ``emergency`` calls :func:`rehearse_quietly`, which reports and never blocks.
``backout check`` calls :func:`rehearse` (the catalog up to the migration).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from backout.config import Settings
from backout.database.connection import Target, connect
from backout.database.histories.binding import applied_in, history_of
from backout.database.history import NO_TIME, Applied, table_exists
from backout.database.scratch import scratch_database
from backout.errors import BackoutError, RefusedError, UsageError
from backout.migrations.catalog import Catalog, Entry, project_catalog
from backout.migrations.file import MigrationFile
from backout.migrations.versions import version_key
from backout.operations.approval import Operator, check_approval
from backout.operations.verify import (
    FAILED,
    IRREVERSIBLE_OUTCOME,
    OK,
    SKIPPED,
    Verdict,
    replay,
    verify,
    verify_rollback,
)

SCRATCH_ENV = "BACKOUT_SCRATCH_DATABASE_URL"
"""A server to create scratch databases on, instead of starting the embedded PostgreSQL."""


@dataclass(frozen=True)
class Recorded:
    """What a target's history tables record as applied: catalog entries, in the order applied."""

    entries: tuple[Entry, ...]
    missing: tuple[str, ...] = ()
    """``folder/name`` of each migration the history lists and the catalog has no file for."""

    def describe(self) -> str:
        folders = len({e.folder for e in self.entries})
        return (
            f"applied {_count(len(self.entries), 'migration')} from {_count(folders, 'folder')} "
            "as recorded on the target"
        )


@dataclass(frozen=True)
class Rehearsal:
    """What rehearsing a change on a scratch database showed."""

    basis: str
    """What the scratch database had first (``applied 7 migrations from 2 folders as recorded
    on the target``)."""
    verdicts: tuple[Verdict, ...] = ()
    problem: str | None = None
    """Why it could not run (a missing file, a recorded migration that does not replay)."""

    @property
    def cannot_run(self) -> str | None:
        """Why the rehearsal showed nothing about the change, or ``None``."""
        if self.problem is not None or not self.verdicts:
            return self.problem or "nothing was rehearsed"
        skipped = next((v for v in self.verdicts if v.outcome == SKIPPED), None)
        return (skipped.error or "an earlier migration failed") if skipped else None

    @property
    def failed(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.outcome == FAILED]

    def line(self, name: str) -> str:
        """One line on the rollback of ``name``: what was applied first, and how it went."""
        verdict = next((v for v in self.verdicts if v.migration == name), None)
        if self.cannot_run is not None or verdict is None:
            return f"could not run: {self.cannot_run or f'{name} was not rehearsed'}"
        if verdict.outcome == OK:
            result = "passed (and applying it again gave the same schema)"
        elif verdict.outcome == IRREVERSIBLE_OUTCOME:
            result = "irreversible (documented)"
        else:
            result = "failed: " + "; ".join(verdict.problems() or ["no detail"])
        return f"{self.basis}, then rolled back {name}: {result}"


def gate(
    settings: Settings,
    conn: psycopg.Connection[Any],
    target: Target,
    operator: Operator,
    change: tuple[str, Sequence[MigrationFile]],
    skip_reason: str | None,
) -> Operator:
    """The operator, with the rehearsal's result to audit; raises when it failed.

    ``change`` is the action (``apply`` or ``rollback``) and its migrations; ``conn`` is the
    target, whose history says what the scratch database must have first.
    """
    action, migrations = change
    environment = target.environment
    if environment is None or not environment.require_approval or not migrations:
        return operator
    check_approval(target, operator)
    if skip_reason is not None:
        if not skip_reason.strip():
            raise UsageError("--skip-rehearsal needs a reason: say why it is safe to skip")
        return replace(operator, rehearsal=f"skipped: {' '.join(skip_reason.split())}")
    try:
        if action == "rollback":
            rehearsal = rehearse_rollback(settings, conn, migrations[0])
            problem = _rollback_problem(rehearsal, migrations[0].name)
        else:
            problem = _apply_problem(rehearse_apply(settings, conn, migrations))
    except UsageError as exc:  # no embedded server here and no scratch server named
        raise UsageError(
            f"cannot rehearse before changing {target.name}: {exc.message}",
            hint=f"install backout[embedded], set {SCRATCH_ENV} to a server for scratch "
            "databases, or pass --skip-rehearsal REASON",
        ) from None
    if problem is not None:
        raise RefusedError(
            f"{problem}; nothing was changed on {target.name}",
            hint="fix it and check with `backout verify`, or pass --skip-rehearsal REASON",
        )
    return replace(operator, rehearsal="passed")


def rehearse_rollback(
    settings: Settings, conn: psycopg.Connection[Any], migration: MigrationFile
) -> Rehearsal:
    """Rehearse rolling ``migration`` back on a scratch database that has what the target
    ``conn`` has (its history tables are read, nothing is changed there)."""
    catalog = project_catalog(settings)
    entry = _entry_of(catalog, migration.folder, migration.version, migration.name)
    if entry is None:
        return Rehearsal("", problem=f"{migration.name} is not in the catalog")
    recorded = recorded_on(settings, catalog, conn)
    if entry not in recorded.entries:
        return _alone(settings, conn, catalog, entry)
    if recorded.missing:
        return Rehearsal(recorded.describe(), problem=_missing(recorded))
    with _scratch() as scratch:
        verdict = verify_rollback(settings, scratch, recorded.entries, entry)
    return Rehearsal(recorded.describe(), (verdict,))


def rehearse_apply(
    settings: Settings, conn: psycopg.Connection[Any], migrations: Sequence[MigrationFile]
) -> Rehearsal:
    """Rehearse applying ``migrations`` in order (each applied, rolled back and applied again)
    on a scratch database that has what the target ``conn`` has."""
    catalog = project_catalog(settings)
    recorded = recorded_on(settings, catalog, conn)
    if recorded.missing:
        return Rehearsal(recorded.describe(), problem=_missing(recorded))
    pending = [_entry_of(catalog, m.folder, m.version, m.name) for m in migrations]
    with _scratch() as scratch:
        failure = replay(scratch, recorded.entries)
        if failure is not None:
            problem = f"replaying the target's migrations: {failure}"
            return Rehearsal(recorded.describe(), problem=problem)
        report = verify(settings, scratch, [e for e in pending if e is not None])
    return Rehearsal(recorded.describe(), tuple(report.verdicts))


def rehearse(settings: Settings, names: Sequence[str]) -> list[Verdict]:
    """Verify the migrations ``names`` (and those before them in their folders) on a scratch
    database."""
    catalog = project_catalog(settings)
    wanted = [e for e in catalog.entries if e.name in names]
    # a file with no version is no migration (a Flyway repeatable...): nothing builds on it
    entries = [e for e in _up_to(catalog.entries, wanted) if e.version is not None]
    with _scratch() as scratch:
        return verify(settings, scratch, entries).verdicts


def rehearse_quietly(
    settings: Settings, conn: psycopg.Connection[Any], migration: MigrationFile
) -> str:
    """One line saying whether ``migration``'s rollback passes rehearsal on what the target
    ``conn`` has; never raises."""
    try:
        return rehearse_rollback(settings, conn, migration).line(migration.name)
    except BackoutError as exc:
        return f"could not run: {exc}"
    except Exception as exc:  # the emergency must go on whatever happens here
        return f"could not run: {type(exc).__name__}: {exc}"


def recorded_on(settings: Settings, catalog: Catalog, conn: psycopg.Connection[Any]) -> Recorded:
    """What ``conn``'s history tables (those that exist) record as applied, in the order it was
    applied: by ``applied_at``, then the folders' order, then version. Read-only."""
    rows: list[tuple[datetime, int, tuple[int, ...], Path, Applied]] = []
    for position, folder in enumerate(catalog.folders):
        for applied in applied_in(conn, settings, catalog, folder).values():
            key = (applied.applied_at or NO_TIME, position, version_key(applied.version))
            rows.append((*key, folder, applied))
    rows.sort(key=lambda row: row[:3])
    entries, missing = [], []
    for *_, folder, applied in rows:
        entry = _entry_of(catalog, folder, applied.version, applied.name)
        if entry is None:
            missing.append(f"{settings.relative(folder)}/{applied.name}")
        else:
            entries.append(entry)
    return Recorded(tuple(entries), tuple(missing))


def _rollback_problem(rehearsal: Rehearsal, name: str) -> str | None:
    """Why a rehearsed rollback stops the change, or ``None`` when it passed."""
    if rehearsal.cannot_run is not None:
        return (
            f"the rehearsal of {name} on a scratch database could not run: {rehearsal.cannot_run}"
        )
    if rehearsal.failed:
        return f"the rehearsal of {name} on a scratch database failed: {rehearsal.line(name)}"
    return None


def _apply_problem(rehearsal: Rehearsal) -> str | None:
    """Why a rehearsed apply stops the change, or ``None`` when it passed."""
    if rehearsal.problem is not None:
        return f"the rehearsal on a scratch database could not run: {rehearsal.problem}"
    failed = [v for v in rehearsal.verdicts if v.outcome in (FAILED, SKIPPED)]
    if not failed:
        return None
    first = failed[0]
    problem = (first.problems() or ["it failed"])[0]
    return (
        f"the rehearsal of {first.migration} on a scratch database failed: {problem} "
        f"({rehearsal.basis} first)"
    )


def _alone(
    settings: Settings, conn: psycopg.Connection[Any], catalog: Catalog, entry: Entry
) -> Rehearsal:
    """The fallback when the target's history does not list ``entry``: its folder up to it."""
    folder = settings.relative(entry.folder)
    if table_exists(conn, history_of(conn, settings, catalog, entry.folder).table):
        why = f"the target's history does not list {entry.name}"
    else:
        why = f"the target has no history table for {folder}"
    basis = f"{why}, so applied {folder} up to it alone"
    verdicts = rehearse(settings, [entry.name])
    verdict = next((v for v in verdicts if v.migration == entry.name), None)
    broken = next((v for v in verdicts if v.outcome == FAILED and v.migration != entry.name), None)
    if verdict is not None and verdict.outcome == SKIPPED and broken is not None:
        error = f"{broken.migration} before it: " + "; ".join(broken.problems() or ["failed"])
        verdict = replace(verdict, error=error)
    return Rehearsal(basis, (verdict,) if verdict else ())


def _entry_of(catalog: Catalog, folder: Path, version: str | None, name: str) -> Entry | None:
    """The catalog entry a history row (or a parsed migration) names: by version in its folder,
    the file of that name when two share the version."""
    same = [e for e in catalog.in_folder(folder) if e.version == version and version is not None]
    named = [e for e in same if e.name == name]
    return next(iter(named or same), None)


def _missing(recorded: Recorded) -> str:
    return (
        "the target's history lists migrations this checkout has no file for: "
        f"{', '.join(recorded.missing)}; a scratch database without them would not be the target"
    )


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


@contextmanager
def _scratch() -> Iterator[psycopg.Connection[Any]]:
    """A connection (autocommit) to a new scratch database, dropped afterwards."""
    with (
        scratch_database(os.environ.get(SCRATCH_ENV) or None) as url,
        connect(url, autocommit=True) as conn,
    ):
        yield conn


def _up_to(everything: Sequence[Entry], named: Sequence[Entry]) -> list[Entry]:
    last: dict[object, int] = {}
    for entry in named:
        last[entry.folder] = max(last.get(entry.folder, -1), list(everything).index(entry))
    return [e for i, e in enumerate(everything) if e.folder in last and i <= last[e.folder]]
