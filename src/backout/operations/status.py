"""``backout status``: the state of each migration against a database's history.

:func:`compute_status` is pure (files and rows in, states out); :func:`read_states` feeds it from
the catalog and the history tables; :func:`status` is the command, read-only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import psycopg

from backout.config import Settings
from backout.database.connection import Target, connect
from backout.database.histories.base import Trouble
from backout.database.histories.binding import history_of
from backout.database.history import (
    Applied,
    RolledBack,
    accepted_damage,
    last_rollbacks,
)
from backout.database.objects import Changes, ObjectKey, recorded, snapshot
from backout.git import Commit, file_history
from backout.migrations.catalog import Catalog, project_catalog
from backout.migrations.file import MigrationFile
from backout.migrations.versions import version_key
from backout.operations.verify import own_tables


class State(StrEnum):
    APPLIED = "applied"
    PENDING = "pending"
    MODIFIED = "modified"
    """Applied, but the file's checksum differs from the one recorded."""
    MISSING = "missing"
    """Applied, but the file is no longer on disk."""
    ROLLED_BACK = "rolled_back"
    """Not applied now, and its last recorded action was a rollback."""
    DIRTY = "dirty"
    """The tool whose table holds the history recorded it as failed or half-applied (a dirty
    flag, a failed row): ``status`` says what the table says and the safe way out."""
    DAMAGED = "damaged"
    """Applied, but objects it created are gone and no later migration removed them (a
    rollback of another migration took them along, or someone dropped them)."""
    SUPERSEDED = "superseded"
    """Rolled back, and an applied migration says in its ``Supersedes:`` header that it
    replaces it (the fix-forward): ``apply`` leaves it alone."""


@dataclass(frozen=True)
class MigrationStatus:
    version: str
    name: str
    path: Path | None
    folder: Path
    history_table: str
    state: State
    applied: Applied | None = None
    rolled_back: RolledBack | None = None
    migration: MigrationFile | None = None
    checksum: str | None = None
    """The file's checksum now, or the recorded one when the file is missing."""
    changes: tuple[Commit, ...] = ()
    """For a modified migration: the commits that changed its file since it was applied."""
    shares_version: tuple[str, ...] = ()
    """The other files of its folder with the same version (commands that run SQL refuse)."""
    history_tool: str = "backout"
    """The tool whose table says what is applied (see :mod:`backout.database.histories`)."""
    troubles: tuple[str, ...] = ()
    """What that tool recorded as failed or half-applied about it, with the way out."""
    lost: tuple[str, ...] = ()
    """For a damaged migration: the objects it created that are gone (``"<type> <identity>"``)."""


@dataclass(frozen=True)
class FolderHistory:
    """One migrations folder, its parsed files, and what its history table says."""

    folder: Path
    history_table: str
    migrations: Sequence[MigrationFile]
    applied: Mapping[str, Applied]
    rolled_back: Mapping[str, RolledBack]
    history_tool: str = "backout"
    troubles: Sequence[Trouble] = ()


def compute_status(folders: Sequence[FolderHistory]) -> list[MigrationStatus]:
    """Every migration's state, folder by folder in version order (missing files included)."""
    result: list[MigrationStatus] = []
    for f in folders:
        rows: list[MigrationStatus] = []
        on_disk = {m.version: m for m in f.migrations if m.version is not None}
        replaced = _superseded(f)
        for m in f.migrations:
            if m.version is None:
                continue
            row = _state_of(f, m, _row_of(f, m))
            if row.state is State.ROLLED_BACK and m.name in replaced:
                row = replace(row, state=State.SUPERSEDED)
            rows.append(row)
        for version, applied in f.applied.items():
            if version not in on_disk:
                rows.append(
                    MigrationStatus(
                        version=version,
                        name=applied.name,
                        path=None,
                        folder=f.folder,
                        history_table=f.history_table,
                        state=State.MISSING,
                        applied=applied,
                        checksum=applied.checksum,
                    )
                )
        rows = sorted(rows, key=lambda s: (version_key(s.version), s.name))
        result.extend(_with_troubles(f, rows))
    return result


_RECORDED = (State.APPLIED, State.MODIFIED)
"""States a history row stands behind: a trouble about such a migration makes it ``dirty``."""


def _with_troubles(f: FolderHistory, rows: list[MigrationStatus]) -> list[MigrationStatus]:
    """The folder's rows with its tool's name, and each trouble on the migration it concerns
    (``dirty`` when its history says it is applied); one that names no migration of the
    folder goes on its last row."""
    rows = [replace(r, history_tool=f.history_tool) for r in rows]
    for trouble in f.troubles:
        at = next(
            (i for i, r in enumerate(rows) if trouble.migration in (r.name, r.version)),
            len(rows) - 1,
        )
        if at < 0:
            continue
        row = rows[at]
        named = trouble.migration in (row.name, row.version)
        state = State.DIRTY if named and row.state in _RECORDED else row.state
        rows[at] = replace(row, state=state, troubles=(*row.troubles, trouble.describe()))
    return rows


def _superseded(f: FolderHistory) -> set[str]:
    """The names the applied migrations of ``f`` say they supersede (their fix-forwards)."""
    applied = [m for m in f.migrations if m.version is not None and _row_of(f, m) is not None]
    named = (m.header_value("Supersedes") for m in applied)
    return {n.strip().removesuffix(".sql") for n in named if n}


def _row_of(f: FolderHistory, m: MigrationFile) -> Applied | None:
    """``m``'s history row; not when the row names another file that has the same version."""
    applied = f.applied.get(m.version or "")
    if applied is None or applied.name == m.name:
        return applied
    shared = any(o.name == applied.name and o.version == m.version for o in f.migrations)
    return None if shared else applied


def _state_of(f: FolderHistory, m: MigrationFile, applied: Applied | None) -> MigrationStatus:
    assert m.version is not None
    if applied is None:
        rolled_back = f.rolled_back.get(m.name)
        state = State.ROLLED_BACK if rolled_back else State.PENDING
    else:
        rolled_back = None
        same = applied.checksum in (None, m.checksum)
        state = State.APPLIED if same else State.MODIFIED
    return MigrationStatus(
        version=m.version,
        name=m.name,
        path=m.path,
        folder=f.folder,
        history_table=f.history_table,
        state=state,
        applied=applied,
        rolled_back=rolled_back,
        migration=m,
        checksum=m.checksum,
        shares_version=tuple(
            o.path.name
            for o in f.migrations
            if o is not m and version_key(o.version) == version_key(m.version)
        ),
    )


def status(settings: Settings, target: Target) -> list[MigrationStatus]:
    """Every migration's state in the target database. Read-only: creates nothing.

    A modified migration lists the commits that changed its file since it was applied, when
    the project is a git repository.
    """
    catalog = project_catalog(settings)
    with connect(target.url, autocommit=True) as conn:
        states = read_states(settings, catalog, conn, damage=True)
    return [
        replace(s, changes=tuple(file_history(s.path, s.applied.applied_at)))
        if s.state is State.MODIFIED and s.path and s.applied
        else s
        for s in states
    ]


def read_states(
    settings: Settings, catalog: Catalog, conn: psycopg.Connection[Any], *, damage: bool = False
) -> list[MigrationStatus]:
    """Every migration's state, from the catalog's files and each folder's history table;
    with ``damage``, applied migrations whose objects are gone are ``damaged`` (this reads the
    whole catalog: ``apply`` does without)."""
    histories = []
    for folder in catalog.folders:
        bound = history_of(conn, settings, catalog, folder)
        recorded_here = bound.read(conn, catalog.in_folder(folder))
        histories.append(
            FolderHistory(
                folder=folder,
                history_table=bound.table,
                migrations=[e.read() for e in catalog.in_folder(folder)],
                applied=recorded_here.applied,
                rolled_back=last_rollbacks(conn, settings.audit_table, bound.table),
                history_tool=bound.tool,
                troubles=recorded_here.troubles,
            )
        )
    states = compute_status(histories)
    if not damage:
        return states
    current = snapshot(conn, own_tables(settings))
    accepted = accepted_damage(conn, settings.audit_table)
    return mark_damaged(states, recorded(conn), current, accepted)


def mark_damaged(
    states: Sequence[MigrationStatus],
    changes: Mapping[tuple[str, str], Changes],
    current: frozenset[ObjectKey],
    accepted: Mapping[str, set[str]],
) -> list[MigrationStatus]:
    """``states``, the applied migrations that lost objects they created marked ``damaged``:
    objects recorded as created when applied (or accepted as removed by a rollback) that are
    gone now, unless an applied migration removed them."""
    applied = [s for s in states if s.state is State.APPLIED]
    removed = {k for s in applied for k in _changes(changes, s).removed}
    present = {k.describe() for k in current}
    result = []
    for s in states:
        lost = set() if s.state is not State.APPLIED else _lost(s, changes, current, removed)
        lost |= {o for o in accepted.get(s.name, ()) if o not in present and s in applied}
        result.append(replace(s, state=State.DAMAGED, lost=tuple(sorted(lost))) if lost else s)
    return result


def _changes(changes: Mapping[tuple[str, str], Changes], s: MigrationStatus) -> Changes:
    return changes.get((s.history_table, s.version)) or Changes()


def _lost(
    s: MigrationStatus,
    changes: Mapping[tuple[str, str], Changes],
    current: frozenset[ObjectKey],
    removed: set[ObjectKey],
) -> set[str]:
    gone = _changes(changes, s).created - current
    return {k.describe() for k in gone if k not in removed and not any(r.owns(k) for r in removed)}
