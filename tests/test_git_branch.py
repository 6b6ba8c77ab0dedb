"""Committing the incident's files on a new branch, in real repositories, without touching the
engineer's checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from backout.errors import ExitCode
from backout.git_branch import GitError, branch_names, commit_files_on_branch, files_on_branches
from tests.helpers import git_commit

AT = "2026-11-20T10:00:00Z"


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout


def checkout_state(root: Path) -> tuple[str, ...]:
    """Everything the engineer could lose: status, both diffs, HEAD, branch, the index's bytes."""
    return (
        git(root, "status", "--porcelain", "--untracked-files=all"),
        git(root, "diff"),
        git(root, "diff", "--cached"),
        git(root, "rev-parse", "HEAD"),
        git(root, "branch", "--show-current"),
        (root / ".git/index").read_bytes().hex(),
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git_commit(
        tmp_path, {"README.md": "hello\n", "migrations/001_a.sql": "SELECT 1;\n"}, "start", at=AT
    )
    return tmp_path


def test_exactly_the_files_are_committed_on_top_of_head(repo: Path) -> None:
    (repo / "ops/postmortems").mkdir(parents=True)
    (repo / "ops/postmortems/INC-20261124-01-a.md").write_text("# incident\n")
    (repo / "migrations/002_fix_a.sql").write_text("-- stub\n")

    commit = commit_files_on_branch(
        repo,
        [repo / "ops/postmortems/INC-20261124-01-a.md", repo / "migrations/002_fix_a.sql"],
        "incident/INC-20261124-01",
        "INC-20261124-01: postmortem and stub",
    )

    assert commit is not None
    assert commit.files == ("ops/postmortems/INC-20261124-01-a.md", "migrations/002_fix_a.sql")
    changed = git(repo, "diff", "--name-status", "HEAD", "incident/INC-20261124-01")
    assert changed.splitlines() == [
        "A\tmigrations/002_fix_a.sql",
        "A\tops/postmortems/INC-20261124-01-a.md",
    ]
    assert git(repo, "rev-parse", "incident/INC-20261124-01").strip() == commit.commit
    assert git(repo, "log", "-1", "--format=%s%n%an", commit.commit).splitlines() == [
        "INC-20261124-01: postmortem and stub",
        "Ada Lovelace",
    ]


def test_the_engineers_staged_and_unstaged_work_is_left_exactly_as_it_was(repo: Path) -> None:
    (repo / "README.md").write_text("staged edit\n")
    git(repo, "add", "README.md")
    (repo / "README.md").write_text("staged edit, then an unstaged one\n")
    (repo / "migrations/001_a.sql").write_text("SELECT 2;\n")  # unstaged
    (repo / "scratch.txt").write_text("untracked\n")
    (repo / "incident.md").write_text("v1\n")
    git(repo, "add", "incident.md")  # the engineer staged one version of a file we commit...
    (repo / "incident.md").write_text("v2\n")  # ...and kept editing it
    before = checkout_state(repo)

    commit = commit_files_on_branch(repo, [repo / "incident.md"], "incident/x", "x")

    assert checkout_state(repo) == before
    assert commit is not None
    assert git(repo, "show", "incident/x:incident.md") == "v2\n"  # what is on disk now
    assert git(repo, "show", "incident/x:README.md") == "hello\n"  # not their staged edit
    assert git(repo, "show", "incident/x:migrations/001_a.sql") == "SELECT 1;\n"


def test_an_existing_branch_is_refused_and_nothing_changes(repo: Path) -> None:
    (repo / "a.md").write_text("a\n")
    git(repo, "branch", "incident/x")
    before = git(repo, "rev-parse", "incident/x")

    with pytest.raises(GitError, match="already exists") as caught:
        commit_files_on_branch(repo, [repo / "a.md"], "incident/x", "x")

    assert caught.value.exit_code == ExitCode.FAILED
    assert git(repo, "rev-parse", "incident/x") == before


def test_a_repository_without_commits_is_refused(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet")
    (tmp_path / "a.md").write_text("a\n")

    with pytest.raises(GitError, match="no commit yet"):
        commit_files_on_branch(tmp_path, [tmp_path / "a.md"], "incident/x", "x")


def test_a_bad_branch_name_is_refused(repo: Path) -> None:
    (repo / "a.md").write_text("a\n")

    with pytest.raises(GitError, match="not a valid git branch name"):
        commit_files_on_branch(repo, [repo / "a.md"], "--force", "x")


def test_outside_a_repository_nothing_is_committed(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("a\n")

    assert commit_files_on_branch(tmp_path, [tmp_path / "a.md"], "incident/x", "x") is None
    assert branch_names(tmp_path) == []
    assert files_on_branches(tmp_path, tmp_path / "ops") == {}


def test_branches_and_the_files_they_hold_in_a_folder(repo: Path) -> None:
    (repo / "ops/postmortems").mkdir(parents=True)
    (repo / "ops/postmortems/INC-20261124-01-a.md").write_text("x\n")
    commit_files_on_branch(
        repo, [repo / "ops/postmortems/INC-20261124-01-a.md"], "incident/INC-20261124-01", "x"
    )

    main = git(repo, "branch", "--show-current").strip()
    assert sorted(branch_names(repo)) == sorted(["incident/INC-20261124-01", main])
    assert files_on_branches(repo, repo / "ops/postmortems") == {
        "incident/INC-20261124-01": ["INC-20261124-01-a.md"],
        main: [],
    }


def test_a_project_in_a_subfolder_of_the_repository(repo: Path) -> None:
    project = repo / "services/api"
    project.mkdir(parents=True)
    (project / "note.md").write_text("n\n")

    commit = commit_files_on_branch(project, [project / "note.md"], "incident/sub", "x")

    assert commit is not None
    assert commit.files == ("services/api/note.md",)
