"""What a migration format is to backout: how it finds migrations in a folder, and how it reads
one into the one model, :class:`backout.migrations.file.MigrationFile`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from backout.migrations.entry import Entry
    from backout.migrations.file import MigrationFile


class Format(Protocol):
    """One tool's way of writing migrations."""

    name: str
    """As written in the configuration: ``strategy``, ``goose``, ``dbmate``..."""

    def entries(self, folder: Path) -> Iterable[Entry]:
        """The migrations in ``folder`` (not recursive, unless the format uses sub-folders)."""
        ...

    def read(self, entry: Entry) -> MigrationFile:
        """``entry`` parsed: forward and down statements, their files and lines, flags, notes,
        problems (a file that cannot be read at all raises MalformedMigrationError)."""
        ...

    def detects(self, folder: Path, names: list[str]) -> bool:
        """Whether ``folder`` (whose entries are ``names``) is written in this format."""
        ...
