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
from backout.operations.backup import BackupPlan, plan_backup
from backout.operations.emergency.incident import Opening, postmortem
from backout.operations.emergency.model import Run
from backout.postmortems.file import render_postmortem

PROVISIONAL_ID = "INC-19700101-01"
"""The incident id the templates are tried with: the real one is chosen when it opens."""
ROOM_MARGIN = 1.2
"""The backup folder must have this much more room than the tables' size on disk."""


def preflight(run: Run, opening: Opening) -> BackupPlan | None:
    """Refuse, with nothing changed, what would fail after the rollback commits; return the
    backup plan it read (None when the backup is waived)."""
    problems = [*_templates(run, opening), *_folders(run)]
    backup = None if run.request.no_backup else plan_backup(run.conn, run.statements)
    if backup is not None:
        problems += _room(run, backup)
    if not run.request.no_git:
        problems += _git_state(run)
    if problems:
        raise RefusedError(
            f"pre-flight: {problems[0]}",
            hint="nothing was changed; fix it and run the same command again",
        )
    return backup


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


def _room(run: Run, backup: BackupPlan) -> Iterator[str]:
    folder = _nearest_existing(run.ctx.settings.backups_folder)
    if not folder.is_dir():
        return
    needed = round(sum(_size(run.conn, item.table) for item in backup.items) * ROOM_MARGIN)
    free = shutil.disk_usage(folder).free
    if needed > free:
        yield (
            f"the backup needs about {needed >> 20} MiB and {folder} has {free >> 20} MiB free: "
            "free some space, or set backups to another folder"
        )


def _size(conn: psycopg.Connection[Any], table: str) -> int:
    """The table's size on disk; 0 when it cannot be read now (the backup will tell)."""
    try:
        row = conn.execute("SELECT pg_relation_size(to_regclass(%s))", (table,)).fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row and row[0] is not None else 0


def _git_state(run: Run) -> Iterator[str]:
    try:
        git.branch_names(run.ctx.settings.root)
    except (BackoutError, OSError) as exc:
        yield f"the git repository cannot be read ({exc}); pass --no-git to skip the branch"
