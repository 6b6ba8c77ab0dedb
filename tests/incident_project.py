"""The project an emergency test starts from: the sample migrations committed in a git
repository, all applied to a fresh database."""

from __future__ import annotations

import shutil
from pathlib import Path

from backout.config import Settings
from backout.database.connection import Target
from backout.operations.apply import apply
from backout.operations.approval import Operator
from tests.helpers import git_commit
from tests.samples import SAMPLES

ENGINEER = Operator("Ada Lovelace <ada@example.com>")


def committed_project(root: Path, config: str = "") -> Path:
    """The sample migrations and a ``backout.toml`` (plus ``config``), committed in ``root``."""
    shutil.copytree(SAMPLES, root / "migrations")
    (root / "backout.toml").write_text('migrations = ["migrations"]\n' + config)
    files = {str(p.relative_to(root)): p.read_text() for p in root.rglob("*.*")}
    git_commit(root, files, "Add the migrations", at="2026-11-20T10:00:00+00:00")
    return root


def applied(settings: Settings, database_url: str) -> Target:
    """The database at ``database_url`` with every sample migration applied."""
    target = Target(database_url)
    apply(settings, target, ENGINEER)
    return target
