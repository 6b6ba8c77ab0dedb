"""Writing a new migration file that follows the naming and header rules.

:func:`plan_new_migration` is pure: it decides the file name and renders the template.
:func:`create_migration` writes the file, refusing to overwrite anything.

A version is taken atomically: the folder is locked (``flock`` on the folder itself, so nothing is
left behind and a killed process lets go) while the next version is chosen and its file created,
so two ``backout new`` started together, or ``new`` and an emergency writing its fix-forward stub,
never write two files with one version. Exclusivity is on the version, not the file name: a file
of the same version written by something else meanwhile moves the new one to the next version.
"""

from __future__ import annotations

import os
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from backout.config import Settings
from backout.errors import BackoutError, FileExistsRefusal, LockTimeoutError, UsageError
from backout.migrations.catalog import (
    Catalog,
    Entry,
    choose_folder,
    discover,
    next_version,
    project_catalog,
)
from backout.migrations.file import STUB_MARKER
from backout.migrations.formats import layouts
from backout.migrations.versions import version_key
from backout.templating import MIGRATION_TEMPLATE, render

if sys.platform != "win32":
    import fcntl

_NOT_WORD = re.compile(r"[^a-z0-9]+")


LOCK_WAIT = 10.0
"""Seconds ``backout new`` waits for another one choosing a version in the same folder."""
CLAIM_ATTEMPTS = 20
"""How many versions a new file tries when others keep taking them before it is written."""


@dataclass(frozen=True)
class NewMigration:
    """A migration file about to be written."""

    path: Path
    version: str
    description: str
    content: str
    at_version: Callable[[str], NewMigration] | None = field(
        default=None, compare=False, repr=False
    )
    """The same migration planned at another version (when its version is taken)."""
    others: tuple[tuple[Path, str], ...] = ()
    """Files written with it, for formats whose down part is a file of its own."""


def snake_case(description: str) -> str:
    """``"Add widgets (v2)"`` -> ``"add_widgets_v2"``; raise when nothing usable is left."""
    ascii_text = unicodedata.normalize("NFKD", description).encode("ascii", "ignore").decode()
    slug = _NOT_WORD.sub("_", ascii_text.lower()).strip("_")
    if not slug:
        raise UsageError(
            f"description {description!r} cannot be made snake_case",
            hint='use letters and digits, e.g. backout new "add widgets"',
        )
    return slug


def plan_new_migration(
    catalog: Catalog,
    folder: Path,
    description: str,
    *,
    phase: str = "TODO",
    checklist: str = "TODO",
    templates: Path | None = None,
) -> NewMigration:
    """The next migration in ``folder``: its path and the rendered template. Reads nothing."""
    slug = snake_case(description)
    for entry in catalog.in_folder(folder):
        if entry.description == slug:
            raise UsageError(
                f"{catalog.display(entry.path)} already has the description {slug!r}",
                hint="choose a description that says what this migration does",
            )

    fmt = catalog.format_of(folder)
    if fmt != "strategy":
        purpose = " ".join(description.split())
        return in_layout(catalog, folder, fmt, slug, [f"Purpose: {purpose}", ""])

    def at(version: str) -> NewMigration:
        filename = f"{version}_{slug}.sql"
        context = {
            "filename": filename,
            "version": version,
            "description": slug,
            "purpose": " ".join(description.split()),
            "phase": phase,
            "checklist": checklist,
            "section": slug.replace("_", " ").upper(),
        }
        content = render(MIGRATION_TEMPLATE, context, templates)
        return NewMigration(folder / filename, version, slug, content, at)

    return at(catalog.next_version(folder))


def create_migration(plan: NewMigration) -> Path:
    """Write the planned file under its folder's lock; refuse when the file exists.

    When another file has taken its version since it was planned, it is written at the next
    free version instead (the returned path says where).
    """
    folder = make_folder(_folder_of(plan))
    with version_lock(folder):
        return claim(plan).path


def claim(plan: NewMigration) -> NewMigration:
    """Write ``plan`` at a version no other file of its folder has; the folder must be locked.

    The file is created with ``O_EXCL``; when a file of the same version appears meanwhile
    (written by something that does not take the lock), the new one moves to the next version.
    """
    for _ in range(CLAIM_ATTEMPTS):
        if _sharing(plan) and plan.at_version is not None:
            plan = plan.at_version(_next(plan))
        plan.path.parent.mkdir(exist_ok=True)  # a directory format's migration folder
        write_exclusively(plan.path, plan.content)
        if not _sharing(plan):
            _write_others(plan)
            return plan
        plan.path.unlink()  # a file of this version appeared while it was written
    raise BackoutError(
        f"no free version in {plan.path.parent}: files with new versions keep appearing",
        hint="run `backout new` again once whatever writes them is done",
    )


def _write_others(plan: NewMigration) -> None:
    for path, content in plan.others:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_exclusively(path, content)


def write_exclusively(path: Path, content: str) -> None:
    """Create ``path`` with ``content``; refuse (never overwrite) when it exists."""
    try:
        with path.open("x", encoding="utf-8", newline="\n") as handle:
            handle.write(content)
    except FileExistsError:
        raise FileExistsRefusal(path) from None
    except OSError as exc:
        raise BackoutError(
            f"cannot write {path}: {exc.strerror}", hint="check the folder's permissions"
        ) from None


def make_folder(folder: Path) -> Path:
    """``folder``, created when missing; an error naming it when it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise BackoutError(
            f"cannot create the migrations folder {folder}: a file is where backout needs a folder",
            hint="move the file away or point --migrations-dir elsewhere",
        ) from None
    except OSError as exc:
        raise BackoutError(
            f"cannot create the migrations folder {folder}: {exc.strerror}",
            hint="check the path and its permissions",
        ) from None
    return folder


@contextmanager
def version_lock(folder: Path, *, wait: float = LOCK_WAIT) -> Iterator[None]:
    """Exclusive use of ``folder``'s versions while one is chosen and its file created.

    ``flock`` on the folder itself: no lock file is left behind, and the kernel lets go when
    the process dies. Waits at most ``wait`` seconds (exit 5 after). Where there is no
    ``flock`` (Windows, a file system without locks), only the ``O_EXCL`` creation and the
    re-check after it hold.
    """
    if sys.platform == "win32":
        yield
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError as exc:
        raise BackoutError(
            f"cannot read the migrations folder {folder}: {exc.strerror}",
            hint="check the path and its permissions",
        ) from None
    try:
        _lock(descriptor, folder, wait)
        yield
    finally:
        os.close(descriptor)  # closing the descriptor releases the lock


def _lock(descriptor: int, folder: Path, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockTimeoutError(
                    f"another backout has been choosing a version in {folder} for {wait:g} s",
                    hint="try again; if it persists, look for a stuck backout process",
                ) from None
            time.sleep(0.005)
        except OSError:
            return  # no locks on this file system: the O_EXCL creation and its re-check hold


def _folder_entries(folder: Path) -> tuple[Entry, ...]:
    return discover(folder, (folder,), must_exist=False).entries


def _sharing(plan: NewMigration) -> bool:
    """Whether another migration of ``plan``'s folder has its version."""
    key = version_key(plan.version)
    folder = _folder_of(plan)
    return any(e.key == key and e.path != plan.path for e in _folder_entries(folder))


def _next(plan: NewMigration) -> str:
    """The next free version of ``plan``'s folder, in its format's way."""
    folder = _folder_of(plan)
    entries = _folder_entries(folder)
    if plan.others or plan.path.name == "up.sql" or any(e.format != "strategy" for e in entries):
        fmt = entries[0].format if entries else "strategy"
        return layouts.next_version(fmt, [e.version for e in entries if e.version], _now())
    return next_version(entries)


def _now() -> datetime:
    return datetime.now(UTC)


def _folder_of(plan: NewMigration) -> Path:
    """The migrations folder of ``plan`` (a directory format's up.sql is one level down)."""
    return plan.path.parent.parent if plan.path.name == "up.sql" else plan.path.parent


def new_migration(
    settings: Settings,
    description: str,
    *,
    cwd: Path,
    folder: Path | None = None,
    phase: str = "TODO",
    checklist: str = "TODO",
) -> NewMigration:
    """``backout new``: plan the next migration in the chosen folder and write it."""
    target = make_folder(choose_folder(settings, folder, cwd))
    with version_lock(target):  # the version is chosen and its file written by one at a time
        plan = plan_new_migration(
            project_catalog(settings, must_exist=False),
            target,
            description,
            phase=phase,
            checklist=checklist,
            templates=settings.templates,
        )
        return claim(plan)


FIX_FORWARD_TEMPLATE = "fix_forward.sql.j2"


def plan_fix_forward(
    catalog: Catalog,
    superseded: Entry,
    incident: str,
    *,
    templates: Path | None = None,
) -> NewMigration:
    """The fix-forward stub for a rolled-back migration: the next version of its folder.

    It carries ``-- Incident:`` and ``-- Supersedes:`` and a ``BACKOUT-STUB`` placeholder, so
    ``lint`` reports it and ``apply`` refuses it until someone writes the corrected change.
    """
    taken = {e.description for e in catalog.in_folder(superseded.folder)}
    slug = f"fix_{superseded.description}"
    if slug in taken:
        slug = f"{slug}_{incident.lower().replace('-', '_')}"
    fmt = catalog.format_of(superseded.folder)
    original = _original_lines(superseded)
    if fmt != "strategy":
        comments = [
            f"Purpose: Fix forward after {incident}: correct {superseded.name}",
            f"Incident: {incident}",
            f"Supersedes: {superseded.name}",
            f"{superseded.name} was rolled back during {incident}: it is never edited.",
            f"{STUB_MARKER} write the corrected change below, then delete this line.",
            *(
                [f"The forward SQL of {superseded.name}, for reference (not run):"]
                if original
                else []
            ),
            *(f"  {line}" for line in original),
        ]
        return in_layout(catalog, superseded.folder, fmt, slug, comments)

    def at(version: str) -> NewMigration:
        filename = f"{version}_{slug}.sql"
        context = {
            "filename": filename,
            "incident": incident,
            "supersedes": superseded.name,
            "phase": "TODO",
            "checklist": "TODO",
            "section": f"FIX FORWARD: {superseded.description.replace('_', ' ').upper()}",
            "stub_marker": STUB_MARKER,
            "original": original,
        }
        content = render(FIX_FORWARD_TEMPLATE, context, templates)
        return NewMigration(superseded.folder / filename, version, slug, content, at)

    return at(catalog.next_version(superseded.folder))


def in_layout(
    catalog: Catalog, folder: Path, fmt: str, slug: str, comments: list[str]
) -> NewMigration:
    """A new migration of a folder in another format than the strategy's, in its layout."""

    def at(version: str) -> NewMigration:
        files = layouts.layout(fmt, version, slug, comments).files
        (main, content), *others = files
        written = tuple((folder / name, text) for name, text in others)
        return NewMigration(folder / main, version, slug, content, at, written)

    versions = [e.version for e in catalog.in_folder(folder) if e.version]
    return at(layouts.next_version(fmt, versions, _now()))


def _original_lines(superseded: Entry) -> list[str]:
    """The forward SQL of the migration a stub replaces, line by line (none when unreadable)."""
    try:
        statements = superseded.read().statements
    except BackoutError:
        return []
    return [line.rstrip() for s in statements for line in f"{s.sql};".split("\n")]
