"""Writing a new migration file that follows the naming and header rules.

:func:`plan_new_migration` is pure: it decides the file name and renders the template.
:func:`create_migration` writes the file, refusing to overwrite anything.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from backout.config import Settings
from backout.errors import FileExistsRefusal, UsageError
from backout.migrations.catalog import Catalog, Entry, choose_folder, project_catalog
from backout.migrations.file import STUB_MARKER
from backout.templating import MIGRATION_TEMPLATE, render

_NOT_WORD = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class NewMigration:
    """A migration file about to be written."""

    path: Path
    version: str
    description: str
    content: str


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
    version = catalog.next_version(folder)
    filename = f"{version}_{slug}.sql"
    content = render(
        MIGRATION_TEMPLATE,
        {
            "filename": filename,
            "version": version,
            "description": slug,
            "purpose": " ".join(description.split()),
            "phase": phase,
            "checklist": checklist,
            "section": slug.replace("_", " ").upper(),
        },
        templates,
    )
    return NewMigration(path=folder / filename, version=version, description=slug, content=content)


def create_migration(plan: NewMigration) -> Path:
    """Write the planned file; refuse when it exists."""
    plan.path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with plan.path.open("x", encoding="utf-8", newline="\n") as handle:
            handle.write(plan.content)
    except FileExistsError:
        raise FileExistsRefusal(plan.path) from None
    return plan.path


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
    target = choose_folder(settings, folder, cwd)
    plan = plan_new_migration(
        project_catalog(settings, must_exist=False),
        target,
        description,
        phase=phase,
        checklist=checklist,
        templates=settings.templates,
    )
    create_migration(plan)
    return plan


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
    version = catalog.next_version(superseded.folder)
    filename = f"{version}_{slug}.sql"
    content = render(
        FIX_FORWARD_TEMPLATE,
        {
            "filename": filename,
            "incident": incident,
            "supersedes": superseded.name,
            "phase": "TODO",
            "checklist": "TODO",
            "section": f"FIX FORWARD: {superseded.description.replace('_', ' ').upper()}",
            "stub_marker": STUB_MARKER,
        },
        templates,
    )
    return NewMigration(
        path=superseded.folder / filename, version=version, description=slug, content=content
    )
