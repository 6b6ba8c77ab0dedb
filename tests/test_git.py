"""backout.git against real repositories built in a temporary folder, isolated from the machine's
git configuration (its home folder, its global and system files, its GIT_* variables): who the
operator is, a file's history and diff, and committing the incident's files on a new branch
without touching the engineer's checkout."""

from __future__ import annotations

import ast
import getpass
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import git
import pytest

from backout.errors import ExitCode
from backout.git import (
    BranchFile,
    Commit,
    GitError,
    branch_names,
    commit_file,
    commit_files_on_branch,
    file_diff_since,
    file_history,
    files_in_folder_on_branches,
    files_on_branch,
    files_on_branches,
    new_repository,
    operator_identity,
)
from tests.helpers import GIT_EMAIL, GIT_NAME, git_commit, write_tree

MIGRATION = "migrations/001_create_jobs.sql"
AT = "2026-11-20T10:00:00Z"
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
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GIT_CONFIG_GLOBAL")
    git.Repo.init(tmp_path).close()
    write_tree(home, {".gitconfig": "[user]\n\tname = Grace Hopper\n"})

    assert operator_identity(tmp_path, {"USER": "root"}) == "Grace Hopper"


def test_the_git_identity_is_read_as_git_reads_it_includes_and_git_config_global(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(
        home,
        {
            "work.gitconfig": "[include]\n\tpath = identity.gitconfig\n",
            "identity.gitconfig": "[user]\n\tname = Grace Hopper\n\temail = grace@example.com\n",
        },
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "work.gitconfig"))
    git.Repo.init(tmp_path).close()

    assert operator_identity(tmp_path, {"USER": "root"}) == "Grace Hopper <grace@example.com>"


def test_the_repository_s_own_identity_wins_over_the_global_one(
    repo: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GIT_CONFIG_GLOBAL")
    write_tree(home, {".gitconfig": "[user]\n\tname = Grace Hopper\n"})

    assert operator_identity(repo, {"USER": "root"}) == f"{GIT_NAME} <{GIT_EMAIL}>"


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


# commit_files_on_branch, branch_names, files_on_branches


def run_git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout


def checkout_state(root: Path) -> tuple[str, ...]:
    """Everything the engineer could lose: status, both diffs, HEAD, branch, the index's bytes."""
    return (
        run_git(root, "status", "--porcelain", "--untracked-files=all"),
        run_git(root, "diff"),
        run_git(root, "diff", "--cached"),
        run_git(root, "rev-parse", "HEAD"),
        run_git(root, "branch", "--show-current"),
        (root / ".git/index").read_bytes().hex(),
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    git_commit(
        tmp_path, {"README.md": "hello\n", "migrations/001_a.sql": "SELECT 1;\n"}, "start", at=AT
    )
    return tmp_path


def test_exactly_the_files_are_committed_on_top_of_head(checkout: Path) -> None:
    (checkout / "ops/postmortems").mkdir(parents=True)
    (checkout / "ops/postmortems/INC-20261124-01-a.md").write_text("# incident\n")
    (checkout / "migrations/002_fix_a.sql").write_text("-- stub\n")

    commit = commit_files_on_branch(
        checkout,
        [checkout / "ops/postmortems/INC-20261124-01-a.md", checkout / "migrations/002_fix_a.sql"],
        "incident/INC-20261124-01",
        "INC-20261124-01: postmortem and stub",
    )

    assert commit is not None
    assert commit.files == ("ops/postmortems/INC-20261124-01-a.md", "migrations/002_fix_a.sql")
    changed = run_git(checkout, "diff", "--name-status", "HEAD", "incident/INC-20261124-01")
    assert changed.splitlines() == [
        "A\tmigrations/002_fix_a.sql",
        "A\tops/postmortems/INC-20261124-01-a.md",
    ]
    assert run_git(checkout, "rev-parse", "incident/INC-20261124-01").strip() == commit.commit
    assert run_git(checkout, "log", "-1", "--format=%s%n%an", commit.commit).splitlines() == [
        "INC-20261124-01: postmortem and stub",
        "Ada Lovelace",
    ]


def test_the_engineers_staged_and_unstaged_work_is_left_exactly_as_it_was(checkout: Path) -> None:
    (checkout / "README.md").write_text("staged edit\n")
    run_git(checkout, "add", "README.md")
    (checkout / "README.md").write_text("staged edit, then an unstaged one\n")
    (checkout / "migrations/001_a.sql").write_text("SELECT 2;\n")  # unstaged
    (checkout / "scratch.txt").write_text("untracked\n")
    (checkout / "incident.md").write_text("v1\n")
    # The engineer staged one version of a file we commit, and kept editing it.
    run_git(checkout, "add", "incident.md")
    (checkout / "incident.md").write_text("v2\n")
    before = checkout_state(checkout)

    commit = commit_files_on_branch(checkout, [checkout / "incident.md"], "incident/x", "x")

    assert checkout_state(checkout) == before
    assert commit is not None
    assert run_git(checkout, "show", "incident/x:incident.md") == "v2\n"  # what is on disk now
    assert run_git(checkout, "show", "incident/x:README.md") == "hello\n"  # not their staged edit
    assert run_git(checkout, "show", "incident/x:migrations/001_a.sql") == "SELECT 1;\n"


def test_an_existing_branch_is_refused_and_nothing_changes(checkout: Path) -> None:
    (checkout / "a.md").write_text("a\n")
    run_git(checkout, "branch", "incident/x")
    before = run_git(checkout, "rev-parse", "incident/x")

    with pytest.raises(GitError, match="already exists") as caught:
        commit_files_on_branch(checkout, [checkout / "a.md"], "incident/x", "x")

    assert caught.value.exit_code == ExitCode.FAILED
    assert run_git(checkout, "rev-parse", "incident/x") == before


def test_a_repository_without_commits_is_refused(tmp_path: Path) -> None:
    run_git(tmp_path, "init", "--quiet")
    (tmp_path / "a.md").write_text("a\n")

    with pytest.raises(GitError, match="no commit yet"):
        commit_files_on_branch(tmp_path, [tmp_path / "a.md"], "incident/x", "x")


def test_a_bad_branch_name_is_refused(checkout: Path) -> None:
    (checkout / "a.md").write_text("a\n")

    with pytest.raises(GitError, match="not a valid git branch name"):
        commit_files_on_branch(checkout, [checkout / "a.md"], "--force", "x")


def test_outside_a_repository_nothing_is_committed(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("a\n")

    assert commit_files_on_branch(tmp_path, [tmp_path / "a.md"], "incident/x", "x") is None
    assert branch_names(tmp_path) == []
    assert files_on_branches(tmp_path, tmp_path / "ops") == {}


def test_branches_and_the_files_they_hold_in_a_folder(checkout: Path) -> None:
    (checkout / "ops/postmortems").mkdir(parents=True)
    (checkout / "ops/postmortems/INC-20261124-01-a.md").write_text("x\n")
    commit_files_on_branch(
        checkout,
        [checkout / "ops/postmortems/INC-20261124-01-a.md"],
        "incident/INC-20261124-01",
        "x",
    )

    main = run_git(checkout, "branch", "--show-current").strip()
    assert sorted(branch_names(checkout)) == sorted(["incident/INC-20261124-01", main])
    assert files_on_branches(checkout, checkout / "ops/postmortems") == {
        "incident/INC-20261124-01": ["INC-20261124-01-a.md"],
        main: [],
    }


def test_a_project_in_a_subfolder_of_the_repository(checkout: Path) -> None:
    project = checkout / "services/api"
    project.mkdir(parents=True)
    (project / "note.md").write_text("n\n")

    commit = commit_files_on_branch(project, [project / "note.md"], "incident/sub", "x")

    assert commit is not None
    assert commit.files == ("services/api/note.md",)


# commit_file


def test_commit_file_commits_that_file_alone_and_keeps_the_rest_staged(checkout: Path) -> None:
    (checkout / "README.md").write_text("staged edit\n")
    run_git(checkout, "add", "README.md")
    (checkout / "note.md").write_text("note\n")

    sha = commit_file(checkout / "note.md", "Add a note")

    assert sha == run_git(checkout, "rev-parse", "HEAD").strip()
    assert run_git(checkout, "show", "--name-only", "--format=%s", "HEAD").split() == [
        "Add",
        "a",
        "note",
        "note.md",
    ]
    assert run_git(checkout, "diff", "--cached", "--name-only").split() == ["README.md"]


def test_commit_file_outside_a_repository_is_none(tmp_path: Path) -> None:
    (tmp_path / "note.md").write_text("note\n")

    assert commit_file(tmp_path / "note.md", "Add a note") is None


def test_a_commit_git_refuses_is_a_git_error_with_gits_reason(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EMAIL", raising=False)
    run_git(checkout, "config", "user.useConfigOnly", "true")
    run_git(checkout, "config", "--unset", "user.name")
    run_git(checkout, "config", "--unset", "user.email")
    (checkout / "note.md").write_text("note\n")

    with pytest.raises(GitError, match=r"^git commit failed: .*nothing was committed") as caught:
        commit_file(checkout / "note.md", "Add a note")

    assert caught.value.hint == "set git config user.name and user.email, or pass --no-git"


# files_in_folder_on_branches


def test_files_in_a_folder_are_read_from_local_then_remote_branches(checkout: Path) -> None:
    folder = checkout / "ops/postmortems"
    write_tree(folder, {"INC-1.md": "one\n", "notes.txt": "not markdown\n"})
    commit_files_on_branch(
        checkout, [folder / "INC-1.md", folder / "notes.txt"], "incident/INC-1", "one"
    )
    head = run_git(checkout, "rev-parse", "incident/INC-1").strip()
    run_git(checkout, "update-ref", "refs/remotes/origin/incident/INC-1", head)
    remote = "refs/remotes/origin/incident/INC-1"
    run_git(checkout, "symbolic-ref", "refs/remotes/origin/HEAD", remote)  # read once, not twice

    found = files_in_folder_on_branches(folder, suffix=".md")

    assert found == [
        BranchFile("incident/INC-1", folder / "INC-1.md", "one\n"),
        BranchFile("origin/incident/INC-1", folder / "INC-1.md", "one\n"),
    ]


def test_files_in_a_folder_are_only_its_files_not_its_subfolders(checkout: Path) -> None:
    folder = checkout / "ops/postmortems"
    write_tree(folder, {"INC-1.md": "one\n", "old.md/INC-0.md": "zero\n"})
    files = [folder / "INC-1.md", folder / "old.md/INC-0.md"]
    commit_files_on_branch(checkout, files, "incident/INC-1", "one")

    found = files_in_folder_on_branches(folder, suffix=".md")

    assert found == [BranchFile("incident/INC-1", folder / "INC-1.md", "one\n")]
    assert files_on_branches(checkout, folder)["incident/INC-1"] == ["INC-1.md", "old.md"]


def test_files_in_a_folder_no_branch_holds_are_none(checkout: Path, tmp_path: Path) -> None:
    assert files_in_folder_on_branches(checkout / "ops/postmortems", suffix=".md") == []
    assert files_in_folder_on_branches(tmp_path / "missing/deeper") == []


def test_files_in_a_folder_outside_a_repository_are_none(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("plain") / "ops"
    write_tree(folder, {"INC-1.md": "one\n"})

    assert files_in_folder_on_branches(folder) == []


def test_importing_the_module_does_not_load_gitpython() -> None:
    code = "import sys, backout.git; print('git' in sys.modules)"

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert done.stdout.strip() == "False"


def imported_modules(path: Path) -> Iterator[str]:
    """The absolute imports of a Python file, lazy ones inside functions included."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_no_other_module_imports_gitpython() -> None:
    source = Path(__file__).resolve().parent.parent / "src" / "backout"

    importers = {
        path.relative_to(source).as_posix()
        for path in source.rglob("*.py")
        for name in imported_modules(path)
        if name in ("git", "gitdb") or name.startswith(("git.", "gitdb."))
    }

    assert importers == {"git.py"}


def test_a_new_repository_commits_every_file_by_its_author(tmp_path: Path) -> None:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "001_a.sql").write_text("SELECT 1;\n")
    (tmp_path / "README.md").write_text("x\n")
    assert new_repository(tmp_path, ("Dana On-Call", "dana@example.com"), "first")
    assert files_on_branch(tmp_path, "main") == ["README.md", "migrations/001_a.sql"]
    (commit,) = file_history(tmp_path / "migrations" / "001_a.sql")
    assert commit.author == "Dana On-Call"
    assert operator_identity(tmp_path, {}) == "Dana On-Call <dana@example.com>"
