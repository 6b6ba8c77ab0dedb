"""The state of each migration against a database's history. Pure: files and rows in, states out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from backout.database.history import Applied, RolledBack
from backout.git import Commit
from backout.migrations.file import MigrationFile


class State(StrEnum):
    APPLIED = "applied"
    PENDING = "pending"
    MODIFIED = "modified"
    """Applied, but the file's checksum differs from the one recorded."""
    MISSING = "missing"
    """Applied, but the file is no longer on disk."""
    ROLLED_BACK = "rolled_back"
    """Not applied now, and its last recorded action was a rollback."""


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


@dataclass(frozen=True)
class FolderHistory:
    """One migrations folder, its parsed files, and what its history table says."""

    folder: Path
    history_table: str
    migrations: Sequence[MigrationFile]
    applied: Mapping[str, Applied]
    rolled_back: Mapping[str, RolledBack]


def compute_status(folders: Sequence[FolderHistory]) -> list[MigrationStatus]:
    """Every migration's state, folder by folder in version order (missing files included)."""
    result: list[MigrationStatus] = []
    for f in folders:
        rows: list[MigrationStatus] = []
        on_disk = {m.version: m for m in f.migrations if m.version is not None}
        for m in f.migrations:
            if m.version is None:
                continue
            rows.append(_state_of(f, m, f.applied.get(m.version)))
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
        result.extend(sorted(rows, key=lambda s: (int(s.version), s.name)))
    return result


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
    )
