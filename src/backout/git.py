"""Git: who runs backout, what happened to a file, and commits that leave the checkout alone.

The only module that talks to git, through one backend: GitPython, imported inside the functions
(``backout --version`` must not pay for it), except for the operator's name, which every apply
and rollback asks for and which two short ``git`` processes read faster than GitPython imports.
Two kinds of functions:

- reading (:func:`operator_identity`, :func:`file_history`, :func:`file_diff_since`,
  :func:`branch_names`, :func:`files_on_branches`, :func:`files_in_folder_on_branches`,
  :func:`first_commit_of`, :func:`files_at`): git adds
  context to an operation and never gates one, so these answer with an empty result when there
  is no repository, no git executable or no history;
- writing (:func:`commit_files_on_branch`, :func:`commit_file`): ``None`` outside a repository,
  :class:`GitError` when git refuses. ``emergency`` records the postmortem and the fix-forward
  stub on ``incident/<id>`` while the engineer may be in the middle of other work at 3 a.m.
  (staged changes, unstaged edits, even to the same files), so that commit is made with git's
  plumbing: a temporary index read from ``HEAD``, the files' current content hashed into it, a
  tree, a commit whose parent is ``HEAD``, and a ref created only if it does not exist yet. The
  working tree, the real index, ``HEAD`` and the current branch are never touched, and no hook
  runs.

History, identities and the folders on branches are read through GitPython's repository
objects; the plumbing and the one ``cat-file --batch`` that reads those folders' files go
through its command wrapper. User text never reaches git as an option. Nothing here prints or
exits.
"""

from __future__ import annotations

import difflib
import errno
import getpass
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from backout.errors import BackoutError, ExitCode

if TYPE_CHECKING:
    import git

SHORT_SHA = 12
GIT_TIMEOUT = 30
"""Seconds a read-only git process may take (a hung credential or fsmonitor hook)."""

# The first of these that is set names the person behind a CI run, as "<system>:<value>".
CI_ACTORS = (
    ("GITHUB_ACTOR", "github"),
    ("GITLAB_USER_LOGIN", "gitlab"),
    ("BUILDKITE_BUILD_CREATOR", "buildkite"),
    ("CIRCLE_USERNAME", "circleci"),
    ("BUILD_REQUESTEDFOR", "azure"),
    ("BITBUCKET_STEP_TRIGGERER_UUID", "bitbucket"),
)
# The variables getpass.getuser() reads, in its order; read from the given environment first.
OS_USER_VARIABLES = ("LOGNAME", "USER", "LNAME", "USERNAME")
_FALSE = ("", "0", "false", "no", "off")


class GitError(BackoutError):
    """Git refused or failed; nothing was committed."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class Commit:
    """One commit that changed a file."""

    sha: str
    """The first 12 hex digits of the commit id."""
    author: str
    """The author's name."""
    authored_at: datetime
    """When it was authored, in UTC."""
    summary: str
    """The first line of the message."""


@dataclass(frozen=True)
class BranchCommit:
    """What :func:`commit_files_on_branch` committed."""

    branch: str
    commit: str
    """The full commit id."""
    files: tuple[str, ...]
    """The committed files, relative to the repository's top level."""
    identical: tuple[str, ...] = ()
    """Those of :attr:`files` whose working-tree copies are untracked and byte-identical to the
    commit (see :func:`identical_copies`): removing them loses nothing, and ``git switch``
    to the branch refuses while they are there."""


@dataclass(frozen=True)
class BranchFile:
    """A file as a branch holds it."""

    branch: str
    """The branch's short name: ``incident/INC-20261124-01``, ``origin/incident/...``."""
    path: Path
    """Where the file would be in the working tree."""
    text: str


# Who is running backout


def operator_identity(cwd: Path, environ: Mapping[str, str]) -> str:
    """Who is running backout, for audit rows and the decisions log.

    In CI, the CI system's actor (``github:<actor>``, ``gitlab:<login>``, ...), or ``ci`` when
    the system names nobody; else ``user.name <user.email>`` from the git configuration of the
    repository holding ``cwd``; else the operating-system user; else ``unknown``.
    """
    for variable, system in CI_ACTORS:
        actor = environ.get(variable, "").strip()
        if actor:
            return f"{system}:{actor}"
    if environ.get("CI", "").strip().lower() not in _FALSE:
        return "ci"
    return _git_identity(cwd) or _os_user(environ) or "unknown"


def _git_identity(cwd: Path) -> str | None:
    """``user.name <user.email>`` as git itself reads them for the repository holding ``cwd``
    (its own, global and system files, includes, ``GIT_CONFIG_*``); ``None`` outside one.

    Two short ``git`` processes rather than GitPython: importing it costs more than both (it
    runs ``git version`` when imported), and every apply and rollback asks this once."""
    if _plain_git(cwd, "rev-parse", "--git-dir") is None:
        return None
    found = _plain_git(cwd, "config", "-z", "--get-regexp", r"^user\.(name|email)$") or ""
    values: dict[str, str] = {}
    for entry in found.split("\0"):  # the last value of a key wins, as for git config --get
        key, _, value = entry.partition("\n")
        values[key] = value.strip()
    name, email = values.get("user.name", ""), values.get("user.email", "")
    if not name:
        return None
    return f"{name} <{email}>" if email else name


def _plain_git(cwd: Path, *args: str) -> str | None:
    """What ``git -C cwd <args>`` prints, or ``None`` when it fails or git cannot run."""
    try:
        done = subprocess.run(
            ["git", "-C", str(cwd), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            timeout=GIT_TIMEOUT,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", errors="replace")


def _os_user(environ: Mapping[str, str]) -> str | None:
    for variable in OS_USER_VARIABLES:
        if environ.get(variable, "").strip():
            return environ[variable].strip()
    try:
        return getpass.getuser() or None
    except (OSError, KeyError, ImportError):  # no such variable and no password-file entry
        return None


# What happened to a file


def file_history(path: Path, since: datetime | None = None) -> list[Commit]:
    """The commits that changed ``path``, newest first; read-only.

    With ``since``, only those committed after it (git's own ``--since`` meaning: the commit
    date, so a change rebased in after ``since`` counts); a naive ``since`` is taken as UTC.
    ``[]`` when ``path`` is in no repository, git is unavailable or the history is empty.
    """
    cutoff = None if since is None else _utc(since)
    with _located(path) as located:
        if located is None:
            return []
        repo, relative = located
        try:
            return [
                _commit(c)
                for c in repo.iter_commits("HEAD", paths=relative)
                if cutoff is None or c.committed_datetime > cutoff
            ]
        except _git_errors():
            return []


def file_diff_since(path: Path, since: datetime) -> str | None:
    """The unified diff of ``path`` from its last version committed at or before ``since`` to
    its content on disk now; read-only.

    ``""`` when they are the same; ``None`` when there is no repository, git is unavailable,
    or no commit at or before ``since`` holds the file. A file deleted from disk diffs to
    nothing. A naive ``since`` is taken as UTC.
    """
    with _located(path) as located:
        if located is None:
            return None
        repo, relative = located
        committed = _committed_at_or_before(repo, relative, _utc(since))
    if committed is None:
        return None
    sha, before = committed
    after = _text(path.read_bytes()) if path.is_file() else ""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{relative} ({sha[:SHORT_SHA]})",
            tofile=f"b/{relative} (working tree)",
        )
    )


def _committed_at_or_before(
    repo: git.Repo, relative: str, cutoff: datetime
) -> tuple[str, str] | None:
    """The id of the last commit at or before ``cutoff`` that changed ``relative``, and the
    file's text in it; ``None`` when there is none or that commit deleted the file."""
    try:
        commit = next(
            (
                c
                for c in repo.iter_commits("HEAD", paths=relative)
                if c.committed_datetime <= cutoff
            ),
            None,
        )
        if commit is None:
            return None
        return commit.hexsha, _text((commit.tree / relative).data_stream.read())
    except KeyError:  # that commit deleted the file
        return None
    except _git_errors():
        return None


@contextmanager
def _located(path: Path) -> Iterator[tuple[git.Repo, str] | None]:
    """The repository holding ``path`` and ``path`` relative to its work tree, as git spells
    it; ``None`` when there is none. The repository is closed on exit (GitPython keeps
    ``git cat-file`` processes running until then)."""
    absolute = path.resolve()
    with _repository(absolute.parent) as repo:
        if repo is None or repo.working_tree_dir is None:
            yield None
            return
        try:
            relative = absolute.relative_to(Path(repo.working_tree_dir).resolve()).as_posix()
        except ValueError:
            yield None
            return
        yield repo, relative


@contextmanager
def _repository(folder: Path) -> Iterator[git.Repo | None]:
    """The repository holding ``folder``, or ``None``; closed on exit."""
    try:
        import git
    except ImportError:  # GitPython refuses to load when it finds no git executable
        yield None
        return
    try:
        repo = git.Repo(folder, search_parent_directories=True, expand_vars=False)
    except (git.GitError, OSError, ValueError):
        yield None
        return
    try:
        yield repo
    finally:
        repo.close()


def _git_errors() -> tuple[type[Exception], ...]:
    """What reading a repository may raise: git failing (an empty repository has no HEAD,
    git refuses a repository owned by someone else), an object the repository lacks, or the
    git executable going away."""
    import git

    return (git.GitError, git.exc.ODBError, OSError, ValueError)


def _commit(commit: git.Commit) -> Commit:
    summary = commit.summary
    return Commit(
        sha=commit.hexsha[:SHORT_SHA],
        author=str(commit.author.name or ""),
        authored_at=datetime.fromtimestamp(commit.authored_date, UTC),
        summary=summary if isinstance(summary, str) else _text(summary),
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


# Commits that leave the checkout alone


def top_level(root: Path) -> Path | None:
    """The work tree holding ``root``; ``None`` outside a repository or without git."""
    if shutil.which("git") is None or not root.is_dir():
        return None
    done = _run(root, "rev-parse", "--show-toplevel", check=False)
    if done.returncode != 0 or not done.text.strip():
        return None
    return Path(done.text.strip())


def commit_files_on_branch(
    root: Path,
    files: Sequence[Path],
    branch: str,
    message: str,
    contents: Mapping[Path, str] | None = None,
    *,
    extend: bool = False,
) -> BranchCommit | None:
    """Commit the current content of ``files`` (or, for those in ``contents``, that text) on a
    new ``branch`` made from ``HEAD``; with ``extend``, on top of ``branch`` when it exists
    (an earlier run of the same incident made it), and nothing new when it holds them already.

    The branch holds ``HEAD``'s tree plus exactly these files: none of the engineer's staged or
    unstaged changes. ``None`` when ``root`` is in no repository (or git is missing). Raises
    :class:`GitError` when the branch exists, the repository has no commit yet, a file is
    outside the repository, or git fails; nothing is committed then.
    """
    top = top_level(root)
    if top is None:
        return None
    relative = [_inside(top, path) for path in files]
    tip = _tip(top, branch) if extend else None
    parent = tip or _parent_of_new_branch(top, branch)
    tree = _tree_of_head_with(top, parent, zip(files, relative, strict=True), contents or {})
    if tip is not None and tree == _run(top, "rev-parse", f"{tip}^{{tree}}").text.strip():
        return BranchCommit(branch, tip, tuple(relative))
    commit = _run(
        top, "commit-tree", tree, "-p", parent, "-F", "-", stdin=message.encode()
    ).text.strip()
    ref = f"refs/heads/{branch}"
    _run(top, "update-ref", "-m", f"backout: {message.splitlines()[0]}", ref, commit, tip or "")
    return BranchCommit(branch, commit, tuple(relative))


def _tip(top: Path, branch: str) -> str | None:
    """The commit at the tip of ``branch``; None when there is no such branch."""
    found = _run(
        top, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", check=False
    )
    return found.text.strip() if found.returncode == 0 else None


def _parent_of_new_branch(top: Path, branch: str) -> str:
    """``HEAD``'s commit id, once sure ``branch`` is a valid name that does not exist yet."""
    if _run(top, "check-ref-format", "--branch", branch, check=False).returncode != 0:
        raise GitError(f"{branch!r} is not a valid git branch name")
    head = _run(top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
    if head.returncode != 0:
        raise GitError(
            f"the git repository at {top} has no commit yet; nothing was committed",
            hint="make a first commit, or pass --no-git",
        )
    ref = f"refs/heads/{branch}"
    if _run(top, "show-ref", "--verify", "--quiet", ref, check=False).returncode == 0:
        raise GitError(
            f"the branch {branch} already exists; nothing was committed",
            hint=f"look at it with `git log {branch}`, or pass --no-git",
        )
    return head.text.strip()


def _tree_of_head_with(
    top: Path, parent: str, files: Iterable[tuple[Path, str]], contents: Mapping[Path, str]
) -> str:
    """The id of a tree: ``parent``'s plus each file's content (on disk, or in ``contents``) at
    its name; built in a temporary index inside the git folder, so the engineer's index is
    never read or written."""
    git_dir = Path(_run(top, "rev-parse", "--absolute-git-dir").text.strip())
    with tempfile.TemporaryDirectory(prefix="backout-index-", dir=git_dir) as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        _run(top, "read-tree", parent, env=env)
        for path, name in files:
            blob = _blob(top, path, contents.get(path))
            mode = "100755" if os.access(path, os.X_OK) else "100644"
            _run(top, "update-index", "--add", "--cacheinfo", f"{mode},{blob},{name}", env=env)
        return _run(top, "write-tree", env=env).text.strip()


def _blob(top: Path, path: Path, text: str | None) -> str:
    """Store ``path``'s content on disk, or ``text`` instead, as a blob; its id."""
    if text is None:
        return _run(top, "hash-object", "-w", "--", str(path.resolve())).text.strip()
    return _run(top, "hash-object", "-w", "--stdin", stdin=text.encode()).text.strip()


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
    return _run(top, "rev-parse", "HEAD").text.strip()


def _inside(top: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:
        raise GitError(
            f"{path} is outside the git repository at {top}; nothing was committed"
        ) from None


# Keeping files out of git, and out of the way


def exclude_folder(root: Path, folder: Path) -> str | None:
    """Make git ignore ``folder`` in the repository holding ``root``: an anchored line added to
    its ``info/exclude`` (local to this clone: no tracked file changes). The line added;
    ``None`` when nothing was needed: no repository or git, ``folder`` outside the work tree
    or its top, or git already ignores what ``folder`` would hold."""
    top = top_level(root)
    inside = None if top is None else _relative_folder(top, folder)
    if top is None or inside is None or inside == ".":
        return None
    probe = _run(top, "check-ignore", "-q", "--", f"{inside}/.backout-probe", check=False)
    if probe.returncode == 0:
        return None
    line = "/" + "".join(f"\\{c}" if c in "\\*?[" else c for c in inside) + "/"
    exclude = Path(_run(top, "rev-parse", "--git-path", "info/exclude").text.strip())
    exclude = exclude if exclude.is_absolute() else top / exclude
    before = exclude.read_bytes() if exclude.is_file() else b""
    separator = b"" if not before or before.endswith(b"\n") else b"\n"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with exclude.open("ab") as handle:
        text = f"# backout: backups hold production rows, never commit them\n{line}\n"
        handle.write(separator + text.encode())
    return line


def identical_copies(root: Path, committed: BranchCommit) -> tuple[str, ...]:
    """The files ``committed`` holds whose working-tree copies the engineer's index does not
    track and whose bytes are exactly the committed ones: ``git switch`` to its branch refuses
    to overwrite them, and removing them loses nothing. Read-only; ``()`` without a
    repository."""
    top = top_level(root)
    if top is None or not committed.files:
        return ()
    literal = [f":(literal){name}" for name in committed.files]
    tracked = set(_run(top, "ls-files", "-z", "--", *literal).text.split("\0"))
    same: list[str] = []
    for name in committed.files:
        path = top / name
        if name in tracked or not path.is_file() or path.is_symlink():
            continue
        on_disk = _run(top, "hash-object", "--", str(path.resolve())).text.strip()
        in_commit = _run(top, "rev-parse", "--verify", "--quiet", f"{committed.commit}:{name}")
        if on_disk == in_commit.text.strip():
            same.append(name)
    return tuple(same)


# Branches and the files they hold


def branch_names(root: Path) -> list[str]:
    """The local branches of the repository holding ``root``; ``[]`` when there is none."""
    top = top_level(root)
    if top is None:
        return []
    done = _run(top, "for-each-ref", "--format=%(refname:short)", "refs/heads/", check=False)
    return done.text.split() if done.returncode == 0 else []


def new_repository(folder: Path, author: tuple[str, str], message: str) -> bool:
    """Make ``folder`` a repository on ``main`` whose first commit, by ``author`` (name, email),
    holds every file in it; ``False`` when git is not installed."""
    try:
        _run(folder, "init", "--quiet", "--initial-branch=main")
    except GitError:
        if shutil.which("git") is None:
            return False
        raise
    _run(folder, "config", "user.name", author[0])
    _run(folder, "config", "user.email", author[1])
    _run(folder, "add", "--all")
    _run(folder, "commit", "--quiet", "--no-verify", "-m", message)
    return True


def files_on_branch(root: Path, branch: str) -> list[str]:
    """Every file committed on ``branch``, as paths from the top of the repository."""
    return _run(root, "ls-tree", "-r", "--name-only", branch).text.split()


def files_on_branches(root: Path, folder: Path) -> dict[str, list[str]]:
    """For each local branch, the names of the files in ``folder`` at its tip (``[]`` when the
    folder is not there); ``{}`` outside a repository."""
    top = top_level(root)
    inside = None if top is None else _relative_folder(top, folder)
    if top is None or inside is None:  # outside the repository, no branch holds the folder
        return {}
    with _repository(top) as repo:
        if repo is None:
            return {}
        return {
            branch: [
                _basename(os.fspath(entry.path))
                for entry in _entries(repo, f"refs/heads/{branch}", inside)
            ]
            for branch in branch_names(root)
        }


def files_in_folder_on_branches(folder: Path, *, suffix: str = "") -> list[BranchFile]:
    """The files directly in ``folder`` (ending with ``suffix``) on every local branch, then on
    every remote-tracking branch, read through git; ``[]`` outside a repository. A file held
    by several branches is listed once per branch; each distinct content is read once, all
    in one batch."""
    existing = next((p for p in (folder, *folder.parents) if p.is_dir()), None)
    top = top_level(existing) if existing is not None else None
    inside = None if top is None else _relative_folder(top, folder)
    if top is None or inside is None:
        return []
    with _repository(top) as repo:
        if repo is None:
            return []
        wanted = [
            (short, entry.path, entry.hexsha)
            for short, ref in _branch_refs(top)
            for entry in _entries(repo, ref, inside)
            if entry.type == "blob" and entry.name.endswith(suffix)
        ]
    contents = _read_blobs(top, list(dict.fromkeys(sha for _, _, sha in wanted)))
    return [
        BranchFile(short, top / path, _text(data))
        for short, path, sha in wanted
        if (data := contents.get(sha)) is not None
    ]


# What a branch holds: the base a change is compared with

BASE_CANDIDATES = ("origin/HEAD", "origin/main", "origin/master", "main", "master")
"""Where the main branch is looked for, in order, when no base is named."""


def first_commit_of(root: Path, refs: Sequence[str]) -> str | None:
    """The first of ``refs`` (branch names, tags, commit ids) that names a commit in the
    repository holding ``root``; ``None`` when none does, or there is no repository."""
    top = top_level(root)
    if top is None:
        return None
    for ref in refs:
        if ref.startswith("-"):  # never an option
            continue
        done = _run(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        if done.returncode == 0:
            return ref
    return None


def files_at(root: Path, ref: str, folder: Path, *, suffix: str = "") -> dict[Path, bytes]:
    """The files under ``folder`` (at any depth) that ``ref`` holds, ending with ``suffix``, by
    where they are in the working tree; read-only. ``{}`` outside a repository or when
    ``ref`` has no such folder; ``ref`` must name a commit (see :func:`first_commit_of`)."""
    top = top_level(root)
    inside = None if top is None else _relative_folder(top, folder)
    if top is None or inside is None:
        return {}
    listing = _run(top, "ls-tree", "-r", "-z", f"{ref}^{{commit}}", "--", inside).text
    wanted: list[tuple[str, str]] = []
    for line in listing.split("\0"):
        meta, _, path = line.partition("\t")
        fields = meta.split()
        if len(fields) == 3 and fields[1] == "blob" and path.endswith(suffix):
            wanted.append((path, fields[2]))
    contents = _read_blobs(top, list(dict.fromkeys(sha for _, sha in wanted)))
    return {top / path: data for path, sha in wanted if (data := contents.get(sha)) is not None}


def _relative_folder(top: Path, folder: Path) -> str | None:
    try:
        return folder.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:
        return None


def _branch_refs(top: Path) -> list[tuple[str, str]]:
    """``(short name, full ref)`` of the local, then the remote-tracking branches."""
    listing = _run(
        top, "for-each-ref", "--format=%(refname)%09%(refname:short)%09%(symref)",
        "refs/heads/", "refs/remotes/", check=False,
    ).text.splitlines()  # fmt: skip
    refs: list[tuple[str, str]] = []
    for line in listing:
        ref, short, symref = [*line.split("\t"), "", ""][:3]
        if not symref:  # origin/HEAD points at another branch: that one is read once
            refs.append((short, ref))
    return refs


def _entries(repo: git.Repo, ref: str, inside: str) -> list[git.objects.base.IndexObject]:
    """What the folder ``inside`` (from the top level) holds at ``ref``, in git's order; ``[]``
    when it is not there. Read through GitPython's object database: one ``git cat-file``
    process for every branch, where listing each with ``git ls-tree`` would start one each."""
    try:
        tree = repo.commit(ref).tree
        found = tree if inside == "." else tree / inside
    except KeyError:  # the branch has no such folder
        return []
    except _git_errors():
        return []
    return list(found) if found.type == "tree" else []


def _basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _read_blobs(top: Path, shas: Sequence[str]) -> dict[str, bytes | None]:
    """The contents of the objects named ``shas`` through one ``git cat-file --batch``;
    ``None`` for a missing one."""
    if not shas:
        return {}
    batch = _run(
        top, "cat-file", "--batch", stdin="".join(f"{sha}\n" for sha in shas).encode(), check=False
    )
    return dict(zip(shas, _batch_contents(batch.stdout), strict=False))


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


# Running git through GitPython


@dataclass(frozen=True)
class _Done:
    """A finished git command: its exit status, output bytes and error text."""

    returncode: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


def _run(
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    check: bool = True,
) -> _Done:
    """Run ``git <args>`` in ``cwd`` (``env`` added to this process's environment).

    With ``check``, a non-zero exit raises :class:`GitError` carrying git's first error line.
    GitPython runs git with ``LC_ALL=C``: its messages are English, which the hint relies on.
    """
    done = _execute(cwd, args, env, stdin)
    if check and done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["no message"])[0]
        hint = None
        if "Please tell me who you are" in done.stderr or "empty ident" in done.stderr:
            hint = "set git config user.name and user.email, or pass --no-git"
        raise GitError(f"git {args[0]} failed: {detail}; nothing was committed", hint=hint)
    return done


def _execute(
    cwd: Path, args: Sequence[str], env: Mapping[str, str] | None, stdin: bytes | None
) -> _Done:
    if not os.access(cwd, os.X_OK):  # GitPython would quietly run in this process's folder
        code = errno.EACCES if cwd.exists() else errno.ENOENT
        raise GitError(f"could not run git: {os.strerror(code)}")
    try:
        from git import Git, GitCommandNotFound
    except ImportError as exc:  # GitPython refuses to load when it finds no git executable
        raise GitError(f"could not run git: {exc}") from None
    try:
        with _input(stdin) as istream:
            status, out, err = Git(cwd).execute(
                [Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *args],
                istream=istream,
                env=dict(env or {}),
                with_extended_output=True,
                with_exceptions=False,
                stdout_as_string=False,
                strip_newline_in_stdout=False,
            )
    except (GitCommandNotFound, OSError) as exc:
        raise GitError(f"could not run git: {_reason(exc)}") from None
    return _Done(status, out, err)


@contextmanager
def _input(data: bytes | None) -> Iterator[BinaryIO | None]:
    """``data`` as a file git can read its standard input from; ``None`` for no input."""
    if data is None:
        yield None
        return
    with tempfile.TemporaryFile() as handle:
        handle.write(data)
        handle.seek(0)
        yield handle


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    return (cause.strerror if isinstance(cause, OSError) else None) or str(cause)
