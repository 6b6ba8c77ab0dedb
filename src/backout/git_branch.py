"""Commit a few files on a new branch without touching the engineer's checkout.

``emergency`` records the postmortem and the fix-forward stub on ``incident/<id>``. The engineer
may be in the middle of other work at 3 a.m.: staged changes, unstaged edits, even to the same
files. So the commit is made with git's plumbing: a temporary index read from ``HEAD``, the
files' current content hashed into it, a tree, a commit whose parent is ``HEAD``, and a ref
created only if it does not exist yet. The working tree, the real index, ``HEAD`` and the
current branch are never touched, and no hook runs.

The git executable is run directly (GitPython adds nothing to plumbing); user text never
reaches it as an option.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from backout.errors import BackoutError, ExitCode


class GitError(BackoutError):
    """Git refused or failed; nothing was committed."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class BranchCommit:
    """What :func:`commit_files_on_branch` committed."""

    branch: str
    commit: str
    """The full commit id."""
    files: tuple[str, ...]
    """The committed files, relative to the repository's top level."""


def top_level(root: Path) -> Path | None:
    """The work tree holding ``root``; ``None`` outside a repository or without git."""
    if shutil.which("git") is None or not root.is_dir():
        return None
    done = _run(root, "rev-parse", "--show-toplevel", check=False)
    if done.returncode != 0 or not done.stdout.strip():
        return None
    return Path(done.stdout.strip())


def commit_files_on_branch(
    root: Path, files: Sequence[Path], branch: str, message: str
) -> BranchCommit | None:
    """Commit the current content of ``files`` on a new ``branch`` made from ``HEAD``.

    The branch holds ``HEAD``'s tree plus exactly these files: none of the engineer's staged or
    unstaged changes. ``None`` when ``root`` is in no repository (or git is missing). Raises
    :class:`GitError` when the branch exists, the repository has no commit yet, a file is
    outside the repository, or git fails; nothing is committed then.
    """
    top = top_level(root)
    if top is None:
        return None
    if _run(top, "check-ref-format", "--branch", branch, check=False).returncode != 0:
        raise GitError(f"{branch!r} is not a valid git branch name")
    head = _run(top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
    if head.returncode != 0:
        raise GitError(
            f"the git repository at {top} has no commit yet; nothing was committed",
            hint="make a first commit, or pass --no-git",
        )
    parent = head.stdout.strip()
    ref = f"refs/heads/{branch}"
    if _run(top, "show-ref", "--verify", "--quiet", ref, check=False).returncode == 0:
        raise GitError(
            f"the branch {branch} already exists; nothing was committed",
            hint=f"look at it with `git log {branch}`, or pass --no-git",
        )
    relative = [_inside(top, path) for path in files]
    git_dir = Path(_run(top, "rev-parse", "--absolute-git-dir").stdout.strip())
    with tempfile.TemporaryDirectory(prefix="backout-index-", dir=git_dir) as scratch:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(scratch) / "index")}
        _run(top, "read-tree", parent, env=env)
        for path, name in zip(files, relative, strict=True):
            blob = _run(top, "hash-object", "-w", "--", str(path.resolve())).stdout.strip()
            mode = "100755" if os.access(path, os.X_OK) else "100644"
            _run(top, "update-index", "--add", "--cacheinfo", f"{mode},{blob},{name}", env=env)
        tree = _run(top, "write-tree", env=env).stdout.strip()
    commit = _run(top, "commit-tree", tree, "-p", parent, "-F", "-", stdin=message).stdout.strip()
    _run(top, "update-ref", "-m", f"backout: {message.splitlines()[0]}", ref, commit, "")
    return BranchCommit(branch, commit, tuple(relative))


def branch_names(root: Path) -> list[str]:
    """The local branches of the repository holding ``root``; ``[]`` when there is none."""
    top = top_level(root)
    if top is None:
        return []
    done = _run(top, "for-each-ref", "--format=%(refname:short)", "refs/heads/", check=False)
    return done.stdout.split() if done.returncode == 0 else []


def files_on_branches(root: Path, folder: Path) -> dict[str, list[str]]:
    """For each local branch, the names of the files in ``folder`` at its tip (``[]`` when the
    folder is not there); ``{}`` outside a repository."""
    top = top_level(root)
    if top is None:
        return {}
    try:
        inside = folder.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:  # the folder is outside the repository: no branch holds it
        return {}
    found: dict[str, list[str]] = {}
    for branch in branch_names(root):
        done = _run(
            top, "ls-tree", "--name-only", f"refs/heads/{branch}", "--", f"{inside}/", check=False
        )
        found[branch] = _basenames(done.stdout.splitlines()) if done.returncode == 0 else []
    return found


def _basenames(paths: Iterable[str]) -> list[str]:
    return [path.rsplit("/", 1)[-1] for path in paths if path]


def _inside(top: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:
        raise GitError(
            f"{path} is outside the git repository at {top}; nothing was committed"
        ) from None


def _run(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise GitError(f"could not run git: {exc.strerror or exc}") from None
    if check and done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["no message"])[0]
        hint = None
        if "Please tell me who you are" in done.stderr or "empty ident" in done.stderr:
            hint = "set git config user.name and user.email, or pass --no-git"
        raise GitError(f"git {args[0]} failed: {detail}; nothing was committed", hint=hint)
    return done
