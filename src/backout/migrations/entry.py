"""A migration found on disk, before it is parsed: where it is, its version, its format."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from backout.migrations.versions import version_key

if TYPE_CHECKING:
    from backout.migrations.file import MigrationFile

_DESCRIPTION = re.compile(r"^[Vv]?\d[\d._]*?(?:(?:__?|-)(?P<description>.*))?$")


@dataclass(frozen=True)
class Entry:
    """One migration in a folder: its main file and, for formats that keep the down part
    elsewhere, the files that hold it."""

    path: Path
    """The file holding the forward SQL (for a directory format, the ``up.sql``)."""
    folder: Path
    name: str
    """How people and the history table name it: the file name without ``.sql``
    (``004_alter_events``), the directory name, or ``<file>:<changeset>`` for Liquibase."""
    version: str | None
    format: str = "strategy"
    others: tuple[Path, ...] = field(default=())
    """The other files this migration reads (a ``.down.sql``, an undo file)."""

    @property
    def key(self) -> tuple[int, ...]:
        """How it sorts and compares among the folder's migrations."""
        return version_key(self.version)

    @property
    def number(self) -> int | None:
        """The version as one number, when it is one (``004``: 4); ``None`` otherwise."""
        return self.key[0] if len(self.key) == 1 else None

    @property
    def description(self) -> str:
        if "__" in self.name:  # Flyway: V1_2__add_jobs
            return self.name.split("__", 1)[1]
        match = _DESCRIPTION.match(self.name)
        return (match.group("description") or "") if match else self.name

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other names people call it by (a Liquibase changeset's id, ``author:id``)."""
        return ()

    def read(self) -> MigrationFile:
        """Parse it, in its folder's format."""
        from backout.migrations.formats import get_format

        return get_format(self.format).read(self)
