"""The migrations a project has: discovery in the configured folders and resolving references.

Discovery only lists file names (cheap); parsing is :func:`backout.migrations.file.read_migration`'s
job, done for the files a command needs. A person names a migration by version (``004``), by
name (``004_alter_events_add_impact_score``, with or without ``.sql``), by description
(``alter_events_add_impact_score``) or by path; a path never reaches outside the configured
folders, and a file that is a symbolic link out of its folder is refused.
"""

from __future__ import annotations

import difflib
import multiprocessing as mp
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from backout.config import Settings
from backout.errors import (
    AmbiguousMigrationError,
    ConfigError,
    UnknownMigrationError,
    UsageError,
)
from backout.migrations.entry import Entry as Entry  # re-exported: callers name it from here
from backout.migrations.formats import format_of
from backout.migrations.versions import version_key

_VERSION = re.compile(r"^(?P<version>\d+)(?:[_-](?P<description>.*))?$")
_LEADING = re.compile(r"\d+")
_VERSION_REFERENCE = re.compile(r"^[Vv]?\d+(?:[._-]\d+)*$")


@dataclass(frozen=True)
class Catalog:
    """Every migration in the configured folders, each folder in version order."""

    root: Path
    folders: tuple[Path, ...]
    entries: tuple[Entry, ...]
    formats: Mapping[Path, str] = field(default_factory=dict)
    """Each folder's format, configured or detected."""

    def in_folder(self, folder: Path) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if e.folder == folder)

    def format_of(self, folder: Path) -> str:
        """The format ``folder``'s migrations are written in (new files too)."""
        return self.formats.get(folder) or format_of(folder, None).name

    def display(self, path: Path) -> str:
        """A path as shown to people: relative to the project root when inside it."""
        return _display(self.root, path)

    def resolve(self, reference: str, cwd: Path) -> Entry:
        """The one migration ``reference`` names; raise a usage error naming candidates."""
        reference = reference.strip()
        if not reference:
            raise UsageError("no migration named", hint="give a version, a name or a path")
        if "/" in reference or "\\" in reference:
            return self._resolve_path(reference, cwd)
        return self._resolve_in(reference, self.folders)

    def next_version(self, folder: Path) -> str:
        """The version the next migration in ``folder`` gets: one more than the highest."""
        return next_version(self.in_folder(folder))

    def duplicates(self, folders: Iterable[Path] | None = None) -> list[tuple[Entry, ...]]:
        """The groups of files that share a version in one folder (of ``folders``, else all)."""
        chosen = self.folders if folders is None else tuple(folders)
        return [group for folder in chosen for group in duplicate_versions(self.in_folder(folder))]

    def refuse_duplicates(self, folders: Iterable[Path] | None = None) -> Catalog:
        """This catalog, when no two files share a version in one of ``folders`` (else all).

        Every command that runs a migration's SQL asks first: a history row names a migration
        by version, so with two files of one version backout cannot tell which one it means.
        """
        found = self.duplicates(folders)
        if found:
            raise DuplicateVersionError(self, found[0])
        return self

    def _resolve_path(self, reference: str, cwd: Path) -> Entry:
        candidate = (cwd / reference).resolve()
        if candidate.is_file():
            in_file = [e for e in self.entries if _names(e, candidate)]
            if len(in_file) > 1:  # a Liquibase file of several changesets
                raise AmbiguousMigrationError(reference, [e.name for e in in_file])
            if in_file:  # an up file, its down file, a changelog of one changeset...
                return in_file[0]
            if candidate.parent in self.folders:
                raise UsageError(
                    f"{reference} is not a migration file",
                    hint="migrations are .sql files; rollback files belong to their migration",
                )
            raise UsageError(
                f"{reference} is outside the configured migration folders "
                f"({', '.join(self.display(f) for f in self.folders)})",
                hint="move it into a migrations folder or add its folder to [tool.backout] "
                "migrations",
            )
        folder = candidate.parent
        if folder not in self.folders:
            raise UnknownMigrationError(
                reference,
                where=" (its folder is not a configured migration folder)",
                suggestions=self._suggest(candidate.name, self.folders),
            )
        return self._resolve_in(candidate.name, (folder,))

    def _resolve_in(self, reference: str, folders: Sequence[Path]) -> Entry:
        ref = reference.removesuffix(".sql")
        pool = [e for e in self.entries if e.folder in folders]
        by_version = bool(_VERSION_REFERENCE.match(ref))  # 004, 003.02, Flyway's 1.2 or V1_2
        matches = [e for e in pool if e.key == version_key(ref)] if by_version else []
        if not matches:
            by_version = False
            files = [e for e in pool if reference in (e.path.name, *(o.name for o in e.others))]
            matches = [e for e in pool if ref in (e.name, e.description, *e.aliases)] or files
        if len(matches) == 1:
            return matches[0]
        if by_version and len({e.folder for e in matches}) == 1:
            raise DuplicateVersionError(self, tuple(matches))
        if matches:
            shown = [self.display(e.path) for e in matches]
            named = len(set(shown)) < len(shown)  # changesets of one file: name them
            raise AmbiguousMigrationError(reference, [e.name for e in matches] if named else shown)
        raise UnknownMigrationError(reference, suggestions=self._suggest(ref, folders))

    def _suggest(self, reference: str, folders: Sequence[Path]) -> list[str]:
        names = {e.name: e for e in self.entries if e.folder in folders}
        for entry in list(names.values()):
            names.setdefault(entry.description, entry)
        ref = reference.removesuffix(".sql")
        started = [n for n in names if n.startswith(ref)] if len(ref) >= 3 else []
        close = difflib.get_close_matches(ref, names, n=3, cutoff=0.75)
        return list(dict.fromkeys(names[c].name for c in [*started, *close]))[:3]


class DuplicateVersionError(UsageError):
    """Two or more files with one version in a migrations folder (exit 2): nothing runs."""

    def __init__(self, catalog: Catalog, group: tuple[Entry, ...]) -> None:
        shown = [catalog.display(e.path) for e in group]
        both = " and ".join([", ".join(shown[:-1]), shown[-1]])
        free = catalog.next_version(group[0].folder)
        super().__init__(
            f"{both} share version {group[0].version}; nothing was run",
            hint="give the one not applied yet (`backout status` shows which) the next free "
            f"version: rename it to {free}_<description>.sql and change its `-- Migration:` line",
        )
        self.paths = tuple(e.path for e in group)


def next_version(entries: Iterable[Entry]) -> str:
    """One more than the highest version of ``entries``, as wide as the widest (3 digits in an
    empty folder; ``3`` after unpadded ``1`` and ``2``, as golang-migrate teams number)."""
    # the leading number of each version: 004 of 004, 003 of a Liquibase changeset's 003.02
    numbers = [m.group() for e in entries if e.version and (m := _LEADING.match(e.version))]
    highest = max((int(n) for n in numbers), default=0)
    width = max((len(n) for n in numbers), default=3)
    return str(highest + 1).zfill(width)


def duplicate_versions(entries: Iterable[Entry]) -> list[tuple[Entry, ...]]:
    """The groups of ``entries`` (one folder's) that share a version, in version order."""
    by_key: dict[tuple[int, ...], list[Entry]] = {}
    for entry in entries:
        if entry.version is not None:
            by_key.setdefault(entry.key, []).append(entry)
    return [
        tuple(sorted(group, key=_order)) for _, group in sorted(by_key.items()) if len(group) > 1
    ]


def discover(
    root: Path,
    folders: Sequence[Path],
    *,
    must_exist: bool = True,
    formats: Mapping[Path, str] | None = None,
) -> Catalog:
    """List the migrations in ``folders``, each folder in its format (``formats`` names it,
    else it is detected) and sorted by version."""
    entries: list[Entry] = []
    chosen: dict[Path, str] = {}
    for folder in folders:
        if not folder.is_dir():
            if must_exist:
                raise ConfigError(
                    f"migrations folder {_display(root, folder)} does not exist",
                    hint="create it, or point [tool.backout] migrations at your folders",
                )
            if folder in (formats or {}):
                chosen[folder] = (formats or {})[folder]
            continue
        found = format_of(folder, (formats or {}).get(folder))
        chosen[folder] = found.name
        listed = sorted(found.entries(folder), key=_order)
        refuse_links_out(root, folder, listed)
        entries.extend(listed)
    return Catalog(root=root, folders=tuple(folders), entries=tuple(entries), formats=chosen)


def refuse_links_out(root: Path, folder: Path, entries: Iterable[Entry]) -> None:
    """Refuse a migration file that is a symbolic link (or lies under one) leading out of its
    folder: a path never reaches outside the configured folders, links included."""
    real = folder.resolve()
    for entry in entries:
        for path in (entry.path, *entry.others):
            if path.parent == folder and not path.is_symlink():
                continue  # the common case, without resolving every file
            target = path.resolve()
            if not target.is_relative_to(real):
                raise UsageError(
                    f"{_display(root, path)} links to {target}, outside the migrations folder "
                    f"{_display(root, folder)}",
                    hint="copy the file into the folder instead of linking to it",
                )


def entries_for_paths(catalog: Catalog, paths: Iterable[Path]) -> list[Entry]:
    """Entries for explicit files or folders (``backout lint PATH...``), configured or not."""
    chosen: dict[tuple[Path, str], Entry] = {}
    for path in paths:
        resolved = path.resolve()
        if resolved.is_dir():
            found = _entries_under(catalog, resolved)
        elif resolved.is_file():
            found = _entries_for_file(resolved, catalog.entries)
        else:
            raise UsageError(f"{path} does not exist", hint="name migration files or folders")
        for entry in found:
            chosen.setdefault((entry.path, entry.name), entry)
    return list(chosen.values())


def neighbours(entries: Iterable[Entry]) -> list[Entry]:
    """Every migration in the folders that hold ``entries``."""
    return [e for folder in dict.fromkeys(e.folder for e in entries) for e in _entries(folder)]


_listed: ContextVar[dict[tuple[Path, str | None], tuple[Entry, ...]] | None] = ContextVar(
    "_listed", default=None
)


@contextmanager
def listing_once() -> Iterator[None]:
    """Within it, each folder is listed (and its format detected, which reads every file) once:
    for one command, such as ``lint PATH...``, that asks for a folder's migrations twice."""
    token = _listed.set({})
    try:
        yield
    finally:
        _listed.reset(token)


def _entries(folder: Path, configured: str | None = None) -> Iterable[Entry]:
    memo = _listed.get()
    if memo is None:
        return format_of(folder, configured).entries(folder)
    if (folder, configured) not in memo:
        memo[folder, configured] = tuple(format_of(folder, configured).entries(folder))
    return memo[folder, configured]


def _names(entry: Entry, path: Path) -> bool:
    """Whether ``path`` names ``entry``: its file, or a file of its own (a down file, an undo
    file; a strategy migration's ``.rollback.sql`` names no migration: it is refused as such)."""
    return path == entry.path or (entry.format != "strategy" and path in entry.others)


def _entries_under(catalog: Catalog, folder: Path) -> list[Entry]:
    """A folder named on the command line: a configured folder's migrations (in its configured
    format), those below a sub-folder of one (a migration directory, a Flyway sub-folder), else
    the folder's own, in the format detected."""
    if folder in catalog.folders:
        return list(catalog.in_folder(folder))
    below = [e for e in catalog.entries if folder in (e.path, *e.path.parents)]
    return below or sorted(_entries(folder), key=_order)


def _entries_for_file(path: Path, known: Iterable[Entry] = ()) -> list[Entry]:
    """The entries of one file named on the command line: the configured folders' migrations
    it belongs to (a directory's up.sql, a down file, a Liquibase file's changesets), else
    those of its own folder, in the format detected."""
    found = [e for e in known if path in (e.path, *e.others)]
    found = found or [e for e in _entries(path.parent) if path in (e.path, *e.others)]
    if found:
        return found
    from backout.migrations.formats.strategy import entry_of

    return [entry_of(path, path.parent)]


def _order(entry: Entry) -> tuple[tuple[int, ...], str]:
    return (entry.key, entry.name)


def _display(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def project_catalog(settings: Settings, *, must_exist: bool = True) -> Catalog:
    """The catalog of the configured migration folders."""
    return discover(
        settings.root, settings.migrations, must_exist=must_exist, formats=settings.formats
    )


def resolved_entry(settings: Settings, reference: str, cwd: Path | None) -> tuple[Catalog, Entry]:
    """The project's catalog and the one migration ``reference`` names (relative to ``cwd``,
    else the project root), refused when two files share a version in its folder."""
    catalog = project_catalog(settings)
    entry = catalog.resolve(reference, cwd or settings.root)
    catalog.refuse_duplicates([entry.folder])
    return catalog, entry


def executable_catalog(settings: Settings) -> Catalog:
    """The catalog of a command that runs migrations from every configured folder: refused (a
    :class:`DuplicateVersionError`) when two files share a version in one of them."""
    return project_catalog(settings).refuse_duplicates()


def choose_folder(settings: Settings, folder: Path | None, cwd: Path) -> Path:
    """The configured folder ``folder`` names (a path, from the working directory or the root).

    Without ``folder``, the only configured folder; with several, a usage error listing them.
    """
    shown = ", ".join(_display(settings.root, f) for f in settings.migrations)
    if folder is None:
        if len(settings.migrations) == 1:
            return settings.migrations[0]
        raise UsageError(
            f"there are several migration folders ({shown})", hint="choose one with --folder"
        )
    for base in (cwd, settings.root):
        candidate = (base / folder).resolve()
        if candidate in settings.migrations:
            return candidate
    raise UsageError(f"{folder} is not a configured migrations folder", hint=f"use one of: {shown}")


PARALLEL_FROM = 200
"""From this many files on, work in worker processes (below, start-up costs more than it saves)."""

T = TypeVar("T")


def map_entries(function: Callable[[Entry], T], entries: Sequence[Entry]) -> list[T]:
    """``[function(e) for e in entries]``, in worker processes (one per core) when there are many.

    For CPU-bound work on independent files, such as parsing and linting them. ``function``
    must be a module-level function and its results must pickle.
    """
    workers = min(os.cpu_count() or 1, 8)
    if len(entries) < PARALLEL_FROM or workers < 2 or "fork" not in mp.get_all_start_methods():
        return [function(entry) for entry in entries]
    chunk = max(1, len(entries) // (workers * 4))
    from concurrent.futures import ProcessPoolExecutor  # only here: it costs start-up time

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
        return list(pool.map(function, entries, chunksize=chunk))
