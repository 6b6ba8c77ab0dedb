"""``backout --version``, ``--help``, ``show`` and ``lint`` start without importing the database
driver, the database or operations code, GitPython, jinja2, icalendar or PyYAML; ``--version``
imports neither typer nor the SQL parser, ``--help`` not the SQL parser, ``show`` and ``lint``
no rich tables, and no command pydantic. Each is run in a fresh interpreter with ``-X
importtime``, which names every module it imports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
HEAVY_PACKAGES = {"psycopg", "psycopg_binary", "psycopg_c", "git", "gitdb", "jinja2", "icalendar"}
HEAVY_PACKAGES |= {"yaml", "_yaml"}
HEAVY_MODULES = ("backout.database", "backout.operations")


def imported(*args: str, cwd: Path) -> list[str]:
    """The modules ``python -m backout ARGS`` imports, after checking that it exits 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKOUT_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPOSITORY / "src"), *filter(None, [env.get("PYTHONPATH")])]
    )
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "backout", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    return [line.rsplit("|", 1)[-1].strip() for line in lines[1:]]  # [0] is the header


def heavy(modules: list[str]) -> list[str]:
    return [
        m
        for m in modules
        if m.split(".")[0] in HEAVY_PACKAGES
        or any(m == h or m.startswith(h + ".") for h in HEAVY_MODULES)
    ]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(REPOSITORY / "migrations", tmp_path / "migrations")
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n')
    return tmp_path


@pytest.mark.parametrize(
    "args", [["--version"], ["--help"], ["show", "001"], ["lint"]], ids=" ".join
)
def test_starting_imports_no_database_git_or_postmortem_library(
    args: list[str], project: Path
) -> None:
    modules = imported(*args, cwd=project)

    assert "backout.cli" in modules
    assert heavy(modules) == []


def top_level(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_the_version_is_printed_before_typer_or_the_sql_parser_loads(project: Path) -> None:
    modules = imported("--version", cwd=project)

    assert top_level(modules) & {"typer", "click", "rich", "pydantic", "pglast"} == set()
    assert [m for m in modules if m.startswith("backout.")] == ["backout.cli"]


def test_the_help_lists_the_commands_without_the_sql_parser(project: Path) -> None:
    modules = imported("--help", cwd=project)

    assert "typer" in modules
    assert "pglast" not in top_level(modules)


@pytest.mark.parametrize("args", [["show", "001"], ["lint"]], ids=" ".join)
def test_reading_migrations_draws_no_rich_table(args: list[str], project: Path) -> None:
    modules = imported(*args, cwd=project)

    assert "pglast" in modules
    assert "rich.table" not in modules


@pytest.mark.parametrize("args", [["lint"], ["rollback", "001", "--print-sql"]], ids=" ".join)
def test_parsing_a_commands_options_imports_no_pydantic(args: list[str], project: Path) -> None:
    # typer 0.29 checks every option through a pydantic model built when the command runs, about
    # 0.19 s of every command: pyproject.toml keeps typer below 0.29.
    modules = imported(*args, cwd=project)

    assert "pydantic" not in top_level(modules)


def test_the_check_sees_what_a_database_command_imports(project: Path) -> None:
    modules = imported("rollback", "001", "--print-sql", cwd=project)

    assert {"psycopg", "backout.database", "backout.operations"} <= set(heavy(modules))
