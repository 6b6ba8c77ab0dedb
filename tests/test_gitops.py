"""gitops against real repositories built in a temporary folder, isolated from the machine's git
configuration (its home folder, its global and system files, its GIT_* variables)."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path

import git
import pytest

from backout.gitops import Commit, file_diff_since, file_history, operator_identity
from tests.helpers import GIT_EMAIL, GIT_NAME, git_commit, write_tree

MIGRATION = "migrations/001_create_jobs.sql"
ISOLATED_GIT_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "GIT_COMMITTER_DATE",
)


@pytest.fixture(autouse=True)
def home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home folder, and git told to read no global or system configuration."""
    folder = tmp_path_factory.mktemp("home")
    empty = write_tree(folder, {"empty.gitconfig": ""}) / "empty.gitconfig"
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder / ".config"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_SYSTEM", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for variable in ISOLATED_GIT_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return folder


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose migration was committed on the 20th, 22nd and 24th, with another
    file committed in between."""
    root = tmp_path / "project"
    git_commit(root, {MIGRATION: "CREATE TABLE jobs ();\n"}, "Add jobs", at="2026-11-20T10:00:00Z")
    git_commit(root, {"README.md": "# project\n"}, "Add a readme", at="2026-11-21T10:00:00Z")
    git_commit(
        root,
        {MIGRATION: "CREATE TABLE jobs (id int);\n"},
        "Give jobs an id",
        at="2026-11-22T10:00:00Z",
    )
    git_commit(
        root,
        {MIGRATION: "CREATE TABLE jobs (id bigint);\n"},
        "Widen the job id\n\nint runs out.",
        at="2026-11-24T10:00:00Z",
        author="Grace Hopper",
    )
    return root


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def _system_git_name() -> str:
    """The user.name of /etc/gitconfig, which GitPython always reads."""
    if not Path("/etc/gitconfig").exists():
        return ""
    reader = git.GitConfigParser("/etc/gitconfig", read_only=True)
    return str(reader.get_value("user", "name", default=""))


# operator_identity


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("GITHUB_ACTOR", "ada-l", "github:ada-l"),
        ("GITLAB_USER_LOGIN", "ada", "gitlab:ada"),
        ("BUILDKITE_BUILD_CREATOR", "Ada Lovelace", "buildkite:Ada Lovelace"),
    ],
)
def test_in_ci_the_operator_is_the_ci_actor_even_inside_a_repository(
    repo: Path, variable: str, value: str, expected: str
) -> None:
    environ = {"CI": "true", variable: value, "USER": "root"}

    assert operator_identity(repo, environ) == expected


def test_github_actor_comes_before_gitlab_login(tmp_path: Path) -> None:
    environ = {"GITLAB_USER_LOGIN": "gl-ada", "GITHUB_ACTOR": "gh-ada"}

    assert operator_identity(tmp_path, environ) == "github:gh-ada"


def test_ci_without_an_actor_is_ci(repo: Path) -> None:
    assert operator_identity(repo, {"CI": "true", "USER": "root"}) == "ci"


def test_ci_false_is_not_ci(repo: Path) -> None:
    assert operator_identity(repo, {"CI": "false"}) == f"{GIT_NAME} <{GIT_EMAIL}>"


def test_outside_ci_the_operator_is_the_git_identity_of_the_repository(repo: Path) -> None:
    folder = repo / "migrations"

    assert operator_identity(folder, {"USER": "root"}) == "Ada Lovelace <ada@example.com>"


def test_the_git_identity_may_come_from_the_global_configuration(
    tmp_path: Path, home: Path
) -> None:
    git.Repo.init(tmp_path).close()
    write_tree(home, {".gitconfig": "[user]\n\tname = Grace Hopper\n"})

    assert operator_identity(tmp_path, {"USER": "root"}) == "Grace Hopper"


def test_a_repository_without_user_name_falls_back_to_the_os_user(tmp_path: Path) -> None:
    if _system_git_name():
        pytest.skip("this machine's /etc/gitconfig sets user.name")
    git.Repo.init(tmp_path).close()

    assert operator_identity(tmp_path, {"LOGNAME": "ada"}) == "ada"


def test_outside_a_repository_the_operator_is_the_os_user(tmp_path: Path) -> None:
    assert operator_identity(tmp_path, {"USER": "ada"}) == "ada"


def test_with_no_user_anywhere_the_operator_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_user() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", no_user)

    assert operator_identity(tmp_path / "missing", {}) == "unknown"


# file_history


def test_history_lists_the_commits_that_changed_the_file_newest_first(repo: Path) -> None:
    history = file_history(repo / MIGRATION, None)

    assert [c.summary for c in history] == ["Widen the job id", "Give jobs an id", "Add jobs"]
    newest = git.Repo(repo).head.commit.hexsha
    assert history[0] == Commit(
        sha=newest[:12], author="Grace Hopper", authored_at=at(24), summary="Widen the job id"
    )


def test_history_since_a_moment_keeps_only_later_commits(repo: Path) -> None:
    assert [c.summary for c in file_history(repo / MIGRATION, at(21))] == [
        "Widen the job id",
        "Give jobs an id",
    ]
    assert [c.summary for c in file_history(repo / MIGRATION, at(22))] == ["Widen the job id"]
    assert file_history(repo / MIGRATION, at(25)) == []


def test_history_times_are_in_utc(tmp_path: Path) -> None:
    git_commit(tmp_path, {"a.sql": "SELECT 1;\n"}, "Add a", at="2026-11-20T12:00:00+02:00")

    (commit,) = file_history(tmp_path / "a.sql", None)

    assert commit.authored_at == at(20)
    assert commit.authored_at.tzinfo == UTC


def test_history_accepts_a_relative_path(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo / "migrations")

    assert len(file_history(Path("001_create_jobs.sql"), None)) == 3


def test_history_outside_a_repository_is_empty(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.sql": "SELECT 1;\n"})

    assert file_history(tmp_path / "a.sql", None) == []


def test_history_of_a_repository_without_commits_is_empty(tmp_path: Path) -> None:
    git.Repo.init(tmp_path).close()
    write_tree(tmp_path, {"a.sql": "SELECT 1;\n"})

    assert file_history(tmp_path / "a.sql", None) == []


def test_history_of_a_file_never_committed_is_empty(repo: Path) -> None:
    write_tree(repo, {"migrations/002_new.sql": "SELECT 1;\n"})

    assert file_history(repo / "migrations/002_new.sql", None) == []


# file_diff_since


def test_diff_since_compares_the_version_committed_then_with_the_file_on_disk(
    repo: Path,
) -> None:
    write_tree(repo, {MIGRATION: "CREATE TABLE jobs (id bigint, name text);\n"})
    first = git.Repo(repo).commit("HEAD~3").hexsha[:12]

    diff = file_diff_since(repo / MIGRATION, at(21))

    assert diff == (
        f"--- a/{MIGRATION} ({first})\n"
        f"+++ b/{MIGRATION} (working tree)\n"
        "@@ -1 +1 @@\n"
        "-CREATE TABLE jobs ();\n"
        "+CREATE TABLE jobs (id bigint, name text);\n"
    )


def test_diff_since_a_commit_moment_includes_that_commit(repo: Path) -> None:
    diff = file_diff_since(repo / MIGRATION, at(22))

    assert diff is not None
    assert "-CREATE TABLE jobs (id int);\n+CREATE TABLE jobs (id bigint);\n" in diff


def test_diff_of_an_unchanged_file_is_empty(repo: Path) -> None:
    assert file_diff_since(repo / MIGRATION, at(25)) == ""


def test_diff_of_a_file_deleted_from_disk_removes_every_line(repo: Path) -> None:
    (repo / MIGRATION).unlink()

    diff = file_diff_since(repo / MIGRATION, at(25))

    assert diff is not None
    assert diff.endswith("@@ -1 +0,0 @@\n-CREATE TABLE jobs (id bigint);\n")


def test_diff_since_before_the_first_commit_is_none(repo: Path) -> None:
    assert file_diff_since(repo / MIGRATION, at(19)) is None


def test_diff_since_a_commit_that_deleted_the_file_is_none(repo: Path) -> None:
    git_commit(repo, {MIGRATION: None}, "Drop the migration", at="2026-11-25T10:00:00Z")
    write_tree(repo, {MIGRATION: "SELECT 1;\n"})

    assert file_diff_since(repo / MIGRATION, at(26)) is None


def test_diff_outside_a_repository_is_none(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.sql": "SELECT 1;\n"})

    assert file_diff_since(tmp_path / "a.sql", at(25)) is None
