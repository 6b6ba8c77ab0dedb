"""``backout guard``: a migration the main branch holds stays byte for byte as committed
(real git repositories)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backout.errors import ExitCode
from tests.helpers import git_commit, write_tree
from tests.runner import run

FIRST = "-- Migration: 001_create_a\nCREATE TABLE a (id int);\n-- ROLLBACK:\n--   DROP TABLE a;\n"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose branch ``main`` holds one migration; a feature branch checked out."""
    git_commit(tmp_path, {"migrations/001_create_a.sql": FIRST}, "first", at="2026-01-01T00:00:00Z")
    import git

    with git.Repo(tmp_path) as handle:
        handle.git.branch("-M", "main")
        handle.git.switch("-c", "feature")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_an_untouched_migration_and_a_new_one_pass(repo: Path) -> None:
    write_tree(repo, {"migrations/002_create_b.sql": FIRST.replace("a", "b")})

    result = run("guard")

    assert result.exit_code == ExitCode.OK
    assert result.stdout == "No problems found in 1 file.\n"


def test_an_edit_of_a_committed_migration_is_refused_at_the_first_changed_line(
    repo: Path,
) -> None:
    write_tree(repo, {"migrations/001_create_a.sql": FIRST.replace("int", "bigint")})

    result = run("guard", "--json")

    assert result.exit_code == ExitCode.PROBLEMS
    [found] = json.loads(result.stdout)["findings"]
    assert (found["rule"], found["file"], found["line"]) == (
        "committed-migration-edited",
        "migrations/001_create_a.sql",
        2,
    )
    assert found["message"].startswith("changed since it was committed on main")


def test_a_deleted_committed_migration_is_refused(repo: Path) -> None:
    (repo / "migrations/001_create_a.sql").unlink()

    result = run("guard", "--format", "github")

    assert result.exit_code == ExitCode.PROBLEMS
    assert "title=committed-migration-edited::deleted or renamed, but main holds it" in (
        result.stdout
    )


def test_without_a_main_branch_there_is_nothing_to_guard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path, {"migrations/001_create_a.sql": FIRST})
    monkeypatch.chdir(tmp_path)

    result = run("guard")

    assert (result.exit_code, result.stdout) == (
        ExitCode.OK,
        "No main branch to compare with yet: nothing to guard.\n",
    )


def test_a_base_that_names_nothing_is_a_usage_error(repo: Path) -> None:
    result = run("guard", "--base", "origin/trunk")

    assert result.exit_code == ExitCode.USAGE
    assert "'origin/trunk' names no branch or commit here" in result.stderr
