"""The strategy document's format: ``NNN_name.sql`` with a commented ``ROLLBACK`` block at its
end (or a sibling ``NNN_name.rollback.sql``). The default when nothing else is detected."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from backout.migrations.entry import Entry
from backout.migrations.file import MigrationFile, is_migration_name, read_migration

_VERSION = re.compile(r"^(?P<version>\d+)(?:[_-].*)?$")


class StrategyFormat:
    name = "strategy"

    def entries(self, folder: Path) -> Iterable[Entry]:
        # The folder is resolved once; its files keep their names (no per-file resolve: a
        # symlinked migration is listed where it is linked, inside the folder).
        with os.scandir(folder) as found:
            for item in found:
                if is_migration_name(item.name) and item.is_file():
                    yield entry_of(folder / item.name, folder)

    def read(self, entry: Entry) -> MigrationFile:
        return read_migration(entry.path, folder=entry.folder)

    def detects(self, folder: Path, names: list[str]) -> bool:
        return True


def entry_of(path: Path, folder: Path) -> Entry:
    """A strategy-format migration file as an entry (the version is its leading digits)."""
    name = path.name.removesuffix(".sql")
    match = _VERSION.match(name)
    return Entry(path, folder, name, match.group("version") if match else None)
