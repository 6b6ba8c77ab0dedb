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
from typing import Any

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


def commit_file(path: Path, message: str) -> str | None:
    """Commit ``path`` alone on the current branch (``git commit --only``): whatever else the
    engineer staged stays staged and uncommitted. The new commit's id; ``None`` outside a
    repository. Raises :class:`GitError` when git refuses (no commit yet, hooks, identity)."""
    top = top_level(path.parent)
    if top is None:
        return None
    name = _inside(top, path)
    _run(top, "add", "--", name)
    _run(top, "commit", "--quiet", "--only", "-m", message, "--", name)
    return str(_run(top, "rev-parse", "HEAD").stdout.strip())


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


@dataclass(frozen=True)
class BranchFile:
    """A file as a branch holds it."""

    branch: str
    """The branch's short name: ``incident/INC-20261124-01``, ``origin/incident/...``."""
    path: Path
    """Where the file would be in the working tree."""
    text: str


def files_in_folder_on_branches(folder: Path, *, suffix: str = "") -> list[BranchFile]:
    """The files directly in ``folder`` (ending with ``suffix``) on every local branch, then on
    every remote-tracking branch, read through git; ``[]`` outside a repository. A file held
    by several branches is listed once per branch."""
    existing = next((p for p in (folder, *folder.parents) if p.is_dir()), None)
    top = top_level(existing) if existing is not None else None
    if top is None:
        return []
    try:
        inside = folder.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:
        return []
    refs = _run(
        top, "for-each-ref", "--format=%(refname)%09%(refname:short)%09%(symref)",
        "refs/heads/", "refs/remotes/", check=False,
    ).stdout.splitlines()  # fmt: skip
    wanted: list[tuple[str, str, str]] = []
    for line in refs:
        ref, short, symref = [*line.split("\t"), "", ""][:3]
        if symref:  # origin/HEAD points at another branch: read that one once
            continue
        listing = _run(top, "ls-tree", "-z", "--name-only", ref, "--", f"{inside}/", check=False)
        for name in listing.stdout.split("\0"):
            if name and name.endswith(suffix):
                wanted.append((short, ref, name))
    if not wanted:
        return []
    batch = _run(
        top, "cat-file", "--batch", stdin="".join(f"{ref}:{name}\n" for _, ref, name in wanted),
        check=False, text=False,
    )  # fmt: skip
    contents = _batch_contents(batch.stdout if isinstance(batch.stdout, bytes) else b"")
    return [
        BranchFile(short, top / name, data.decode("utf-8", errors="replace"))
        for (short, _, name), data in zip(wanted, contents, strict=False)
        if data is not None
    ]


def _batch_contents(output: bytes) -> list[bytes | None]:
    """The objects ``git cat-file --batch`` printed, in order (``None`` for a missing one)."""
    found: list[bytes | None] = []
    at = 0
    while at < len(output):
        end = output.index(b"\n", at)
        header = output[at:end].split()
        at = end + 1
        if len(header) < 3 or header[-1] == b"missing":
            found.append(None)
            continue
        size = int(header[2])
        found.append(output[at : at + size])
        at += size + 1
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
    text: bool = True,
) -> subprocess.CompletedProcess[Any]:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            input=stdin if text or stdin is None else stdin.encode(),
            capture_output=True,
            text=text,
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
