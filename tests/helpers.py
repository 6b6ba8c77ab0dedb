"""Builders for tests that need files: small project trees under a temporary folder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from backout.config import Settings


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    """Write ``{relative path: text}`` under ``root``, creating folders; return ``root``."""
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def write_migrations(folder: Path, *names: str) -> Path:
    """Write one-statement migration files named ``names`` into ``folder``; return ``folder``."""
    return write_tree(folder, dict.fromkeys(names, "SELECT 1;\n"))


def settings_for(root: Path, *folders: str) -> Settings:
    """Settings of a project at ``root`` whose migration folders are ``folders`` (relative)."""
    return Settings(
        root=root,
        config_file=None,
        migrations=tuple(root / folder for folder in folders),
        postmortems=root / "ops" / "postmortems",
        templates=root / "templates",
    )


GIT_NAME = "Ada Lovelace"
GIT_EMAIL = "ada@example.com"


def git_commit(
    root: Path,
    files: Mapping[str, str | None],
    message: str,
    *,
    at: str,
    author: str = GIT_NAME,
) -> str:
    """Write ``files`` under ``root`` (``None`` deletes one) and commit them at ``at``.

    The repository is created on first use with the identity ``GIT_NAME <GIT_EMAIL>`` in its own
    config; ``at`` is an ISO 8601 moment with its offset, such as ``"2026-11-20T10:00:00Z"``, used
    as both the author and the commit date. Returns the commit's full sha.
    """
    # Imported here so that only the tests that build a repository load GitPython.
    from datetime import datetime

    import git

    moment = datetime.fromisoformat(at)

    repo = git.Repo(root) if (root / ".git").exists() else git.Repo.init(root)
    with repo:
        with repo.config_writer() as config:
            config.set_value("user", "name", GIT_NAME)
            config.set_value("user", "email", GIT_EMAIL)
        for relative, text in files.items():
            if text is None:
                repo.index.remove([relative], working_tree=True)
            else:
                write_tree(root, {relative: text})
                repo.index.add([relative])
        actor = git.Actor(author, GIT_EMAIL)
        commit = repo.index.commit(
            message, author=actor, committer=actor, author_date=moment, commit_date=moment
        )
        return commit.hexsha
