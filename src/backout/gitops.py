"""Git: who is running backout, and what happened to a file since a moment.

The only module that imports GitPython. Git adds context to an operation (an audit row's
operator, the commits that touched an applied migration) and never gates one: every function
here answers with an empty result, never an exception, when there is no repository, no git
executable or no history. Nothing here prints, exits or writes to a repository.
"""

from __future__ import annotations

import difflib
import getpass
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import git

SHORT_SHA = 12

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
    cutoff = _utc(since)
    with _located(path) as located:
        if located is None:
            return None
        repo, relative = located
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
            before = _text((commit.tree / relative).data_stream.read())
        except KeyError:  # that commit deleted the file
            return None
        except _git_errors():
            return None
    after = _text(path.read_bytes()) if path.is_file() else ""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{relative} ({commit.hexsha[:SHORT_SHA]})",
            tofile=f"b/{relative} (working tree)",
        )
    )


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
    git refuses a repository owned by someone else), or the git executable going away."""
    import git

    return (git.GitError, OSError, ValueError)


def _git_identity(cwd: Path) -> str | None:
    with _repository(cwd) as repo:
        if repo is None:
            return None
        try:
            reader = repo.config_reader()
            name = str(reader.get_value("user", "name", default="")).strip()
            email = str(reader.get_value("user", "email", default="")).strip()
        except Exception:  # a broken config file must not stop an apply or a rollback
            return None
    if not name:
        return None
    return f"{name} <{email}>" if email else name


def _os_user(environ: Mapping[str, str]) -> str | None:
    for variable in OS_USER_VARIABLES:
        if environ.get(variable, "").strip():
            return environ[variable].strip()
    try:
        return getpass.getuser() or None
    except (OSError, KeyError, ImportError):  # no such variable and no password-file entry
        return None


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
