"""``backout guard``: the migration files the main branch holds, compared with the working
tree (:mod:`backout.migrations.guard`), read through :mod:`backout.git`. Read-only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from backout import git
from backout.config import Settings
from backout.errors import UsageError
from backout.migrations.guard import edits
from backout.migrations.lint import Report


@dataclass(frozen=True)
class Guarded:
    """What was compared: the base (``None`` when there is none yet) and the findings."""

    base: str | None
    report: Report


def guard_project(settings: Settings, base: str | None, paths: Sequence[Path] = ()) -> Guarded:
    """Every ``.sql`` file under the configured migration folders that ``base`` holds (by
    default the first of :data:`backout.git.BASE_CANDIDATES` that exists), or only those of
    ``paths``, checked unchanged on disk."""
    if base is not None and git.first_commit_of(settings.root, [base]) is None:
        raise UsageError(
            f"{base!r} names no branch or commit here",
            hint="name the main branch, e.g. --base origin/main (fetch it first in CI)",
        )
    ref = base or git.first_commit_of(settings.root, git.BASE_CANDIDATES)
    if ref is None:  # no repository, or nothing committed on a main branch yet
        return Guarded(None, Report(files=0, findings=[]))
    committed: dict[Path, bytes] = {}
    for folder in settings.migrations:
        committed.update(git.files_at(settings.root, ref, folder, suffix=".sql"))
    if paths:
        chosen = {p.resolve() for p in paths}
        committed = {p: data for p, data in committed.items() if p.resolve() in chosen}
    current = {p: p.read_bytes() if p.is_file() else None for p in committed}
    return Guarded(ref, Report(files=len(committed), findings=edits(committed, current, ref)))
