"""Directories of up/down files (diesel, and others): ``<version>_<name>/up.sql`` with
``down.sql`` beside it, one migration per directory.

As diesel reads them: a directory is a migration when it holds ``up.sql`` (hidden directories are
skipped); its version is what precedes the first ``_`` with the dashes taken out
(``2023-01-15-093000_create_users`` is version ``20230115093000``, as diesel records it);
``metadata.toml`` with ``run_in_transaction = false`` runs both files outside a transaction
(statement by statement, journaled). diesel's ``-- This file should undo anything in `up.sql```
is a comment of the down file: a note.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from backout.migrations.entry import Entry
from backout.migrations.file import MigrationFile
from backout.migrations.formats.pairs import (
    Pair,
    Stray,
    load,
    load_text,
    parse_pair,
    stray,
    stray_file,
)

FORMAT = "directory"
UP, DOWN, METADATA = "up.sql", "down.sql", "metadata.toml"
DIESEL_DOWN = "This file should undo anything in `up.sql`"
"""The comment ``diesel migration generate`` writes at the top of every down.sql."""
_VERSION = re.compile(r"^\d[\d-]*$")


@dataclass(frozen=True)
class DirectoryEntry(Entry):
    """A migration directory: its description is what follows the version (``create_users``)."""

    @property
    def description(self) -> str:
        return self.name.partition("_")[2]


class DirectoryFormat:
    name = FORMAT

    def entries(self, folder: Path) -> Iterable[Entry]:
        with os.scandir(folder) as found:
            items = sorted((i.name, i.is_dir()) for i in found if not i.name.startswith("."))
        return [entry for name, is_dir in items for entry in _entries(folder, name, is_dir)]

    def read(self, entry: Entry) -> MigrationFile:
        if isinstance(entry, Stray):
            return stray_file(entry)
        up = load(entry.path)
        down = load(entry.others[0]) if entry.others else None
        no_transaction, notes = _metadata(load_text(entry.path.with_name(METADATA)))
        return parse_pair(
            Pair(
                up,
                down,
                FORMAT,
                entry.name,
                entry.version,
                entry.folder,
                missing_down=f"no down.sql in {entry.name}/: write the SQL that undoes this "
                "migration there",
                no_transaction=no_transaction,
                down_no_transaction=no_transaction,
                notes=notes,
                boilerplate=(DIESEL_DOWN,),
            )
        )

    def detects(self, folder: Path, names: list[str]) -> bool:
        """A folder with sub-folders holding ``up.sql``, at least as many as its own SQL files."""
        directories = sum(1 for n in names if not n.startswith(".") and (folder / n / UP).is_file())
        files = sum(1 for n in names if n.lower().endswith(".sql"))
        return directories > 0 and directories >= files


def version_of(name: str) -> str | None:
    """diesel's version of a migration directory: before the first ``_``, without dashes."""
    head = name.partition("_")[0]
    return head.replace("-", "") if _VERSION.match(head) else None


def _entries(folder: Path, name: str, is_dir: bool) -> Iterator[Entry]:
    path = folder / name
    if not is_dir:
        if name.lower().endswith(".sql"):
            yield stray(path, folder, FORMAT, _loose_file(name))
        return
    with os.scandir(path) as found:
        inside = {i.name for i in found if i.is_file()}
    if UP not in inside:
        if any(n.lower().endswith(".sql") for n in inside):
            yield stray(path, folder, FORMAT, _no_up(name))
        return
    version = version_of(name)
    if version is None:
        yield stray(path, folder, FORMAT, _no_version(name))
        return
    others = (path / DOWN,) if DOWN in inside else ()
    yield DirectoryEntry(path / UP, folder, name, version, FORMAT, others)


def _metadata(text: str | None) -> tuple[bool, tuple[str, ...]]:
    """Whether ``metadata.toml`` says ``run_in_transaction = false``, and the note saying so.

    diesel reads a file it cannot parse as no file (it runs the migration in a transaction);
    so does backout.
    """
    if text is None:
        return False, ()
    try:
        settings = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False, ()
    if settings.get("run_in_transaction") is False:
        note = (
            "metadata.toml says run_in_transaction = false: both files run outside a "
            "transaction, statement by statement; a failure leaves the statements before it done"
        )
        return True, (note,)
    return False, ()


def _loose_file(name: str) -> str:
    return (
        f"{name} is a SQL file beside the migration directories: this folder's migrations are "
        "<version>_<name>/up.sql (and down.sql); backout does not run it; move it into a "
        "migration directory or out of the folder"
    )


def _no_up(name: str) -> str:
    return (
        f"{name}/ holds SQL files but no up.sql (the name is case-sensitive): it is not a "
        "migration and diesel refuses the folder; add its up.sql or move it out"
    )


def _no_version(name: str) -> str:
    return (
        f"{name}/ does not start with a version (digits, or a date and time such as "
        "2023-01-15-093000, then `_`): backout cannot order it; rename it"
    )
