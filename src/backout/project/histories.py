"""Whose history table each migration folder has in a database: backout's own, another
tool's, or none yet. Read-only: one connection, the catalog's tables looked up by name and
recognised by their columns (:func:`backout.database.histories.binding.bind`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backout.config import Settings
from backout.database.connection import connect
from backout.database.histories.base import columns_of
from backout.database.histories.binding import bind
from backout.project.detection import Folder


@dataclass(frozen=True)
class FoundHistory:
    """The history of one folder: the tool, its table, and whether the table exists yet."""

    folder: str
    tool: str
    table: str
    exists: bool

    @property
    def foreign(self) -> bool:
        """Another tool's table: backout is told to read and write it (``histories``)."""
        return self.exists and self.tool != "backout"


def find_histories(
    url: str, settings: Settings, folders: Sequence[Folder]
) -> tuple[FoundHistory, ...]:
    """The history of each of ``folders`` in the database at ``url``."""
    found = []
    with connect(url, autocommit=True) as conn:
        for folder in folders:
            bound = bind(conn, settings, settings.root / folder.path, folder.format)
            exists = bool(columns_of(conn, bound.table))
            found.append(FoundHistory(folder.path, bound.tool, bound.table, exists))
    return tuple(found)
