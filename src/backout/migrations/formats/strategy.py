"""The strategy document's format: ``NNN_name.sql`` with a commented ``ROLLBACK`` block at its
end, or a rollback script beside it named after it (``NNN_name.rollback.sql``,
``NNN_name_rollback.sql``, ``rollback_NNN_name.sql``, ``NNN_name.down.sql``...). The default
when nothing else is detected.

A rollback script is never a migration; one named after no migration of its folder is an
orphan, which lint reports (``orphan-rollback``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from backout.migrations.entry import Entry
from backout.migrations.file import MigrationFile, is_migration_name, read_migration
from backout.migrations.rollback_source import is_rollback_file_name, rollback_file_names

_VERSION = re.compile(r"^(?P<version>\d+)(?:[_-].*)?$")


class StrategyFormat:
    name = "strategy"

    def entries(self, folder: Path) -> Iterable[Entry]:
        # The folder is resolved once; its files keep their names (no per-file resolve: a
        # symlinked migration is listed where it is linked, inside the folder).
        names = frozenset(_file_names(folder))
        for name in sorted(names):
            if is_migration_name(name):
                yield entry_of(folder / name, folder, names)

    def read(self, entry: Entry) -> MigrationFile:
        return read_migration(entry.path, folder=entry.folder, others=entry.others)

    def detects(self, folder: Path, names: list[str]) -> bool:
        return True


def _file_names(folder: Path) -> Iterable[str]:
    with os.scandir(folder) as found:
        for item in found:
            if item.name.endswith(".sql") and item.is_file():
                yield item.name


def entry_of(path: Path, folder: Path, names: Iterable[str] | None = None) -> Entry:
    """A strategy-format migration file as an entry: the version is its leading digits, its
    others the rollback scripts named after it among ``names`` (the folder's file names; looked
    up on disk when not given)."""
    name = path.name.removesuffix(".sql")
    match = _VERSION.match(name)
    candidates = [n for n in rollback_file_names(path.name) if n != path.name]
    if names is None:
        present = [n for n in candidates if path.with_name(n).is_file()]
    else:
        listed = names if isinstance(names, (set, frozenset)) else set(names)
        present = [n for n in candidates if n in listed]
    return Entry(
        path,
        folder,
        name,
        match.group("version") if match else None,
        others=tuple(path.with_name(n) for n in present),
    )


def orphan_rollback_files(names: Sequence[str]) -> list[str]:
    """The rollback scripts among a folder's file ``names`` that are named after none of its
    migrations (pure: names in, names out)."""
    attached = {
        candidate
        for name in names
        if is_migration_name(name)
        for candidate in rollback_file_names(name)
    }
    return sorted(n for n in names if is_rollback_file_name(n) and n not in attached)


def orphans_in(folder: Path) -> list[Path]:
    """:func:`orphan_rollback_files` of ``folder`` on disk (none when it cannot be listed)."""
    try:
        names = list(_file_names(folder))
    except OSError:
        return []
    return [folder / name for name in orphan_rollback_files(names)]
