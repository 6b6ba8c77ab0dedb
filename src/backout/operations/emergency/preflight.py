"""Pre-flight: everything the emergency needs after its point of no return, checked before it.

Once the rollback commits, writing the stub and the postmortem, the backup and the git branch
must not fail for a reason that could have been known before: the templates render with the
real context, the folders exist or can be made and are writable, the backup folder has room for
what the backup will hold, and the git state can be read. A problem is a refusal (exit 4) with
nothing changed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from backout import git
from backout.errors import BackoutError, RefusedError
from backout.migrations.authoring import plan_fix_forward
from backout.operations.emergency.incident import Opening, postmortem
from backout.operations.emergency.model import Run
from backout.postmortems.file import render_postmortem

PROVISIONAL_ID = "INC-19700101-01"
"""The incident id the templates are tried with: the real one is chosen when it opens."""
ROOM_MARGIN = 1.2
"""The backup folder must have this much more room than the tables' size on disk (as the
planner's statistics know it: a table never vacuumed or analysed may count for less), times
the databases backed up (a fleet's, each the size of its canary's)."""


def preflight(run: Run, opening: Opening) -> None:
    """Refuse, with nothing changed, what would fail after the rollback commits."""
    problems = [*_templates(run, opening), *_folders(run)]
    if not run.request.no_backup:
        problems += _room(run)
    if not run.request.no_git:
        problems += _git_state(run)
    if problems:
        raise RefusedError(
            f"pre-flight: {problems[0]}",
            hint="nothing was changed; fix it and run the same command again",
        )


def _templates(run: Run, opening: Opening) -> Iterator[str]:
    settings = run.ctx.settings
    try:
        plan_fix_forward(run.catalog, run.entry, PROVISIONAL_ID, templates=settings.templates)
        pm = postmortem(settings, opening, PROVISIONAL_ID, run.now())
        render_postmortem(pm, settings.templates)
    except BackoutError as exc:
        yield f"a template does not render: {exc.message}"


def _folders(run: Run) -> Iterator[str]:
    settings = run.ctx.settings
    folders = [settings.postmortems, run.entry.folder]
    if not run.request.no_backup:
        folders.append(settings.backups_folder)
    for folder in folders:
        problem = _writable(folder)
        if problem is not None:
            yield f"{settings.relative(folder)} {problem}"


def _writable(folder: Path) -> str | None:
    """Why files cannot be written in ``folder`` (made first if missing), or None."""
    if folder.exists() and not folder.is_dir():
        return "is a file, not a folder"
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        return f"cannot be made: {existing} is a file"
    if not os.access(existing, os.W_OK | os.X_OK):
        return "is not writable" if existing == folder else f"cannot be made in {existing}"
    return None


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _room(run: Run) -> Iterator[str]:
    folder = _nearest_existing(run.ctx.settings.backups_folder)
    tables = {loss.target for s in run.statements for loss in s.data_loss if loss.target}
    if not folder.is_dir() or not tables:
        return
    needed = round(_size_on_disk(run.conn, sorted(tables)) * ROOM_MARGIN * run.databases)
    free = shutil.disk_usage(folder).free
    if needed > free:
        yield (
            f"the backup needs about {needed >> 20} MiB and {folder} has {free >> 20} MiB free: "
            "free some space, or set backups to another folder"
        )


def _size_on_disk(conn: psycopg.Connection[Any], tables: list[str]) -> int:
    """The tables' size from the catalog's statistics: no lock taken, so never a wait."""
    row = conn.execute(
        "SELECT coalesce(sum(c.relpages::bigint), 0) * current_setting('block_size')::bigint"
        " FROM pg_class c WHERE c.oid = ANY (SELECT to_regclass(t) FROM unnest(%s::text[]) t)",
        (tables,),
    ).fetchone()
    return int(row[0]) if row else 0


def _git_state(run: Run) -> Iterator[str]:
    try:
        git.branch_names(run.ctx.settings.root)
    except (BackoutError, OSError) as exc:
        yield f"the git repository cannot be read ({exc}); pass --no-git to skip the branch"
