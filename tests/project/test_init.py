"""``backout init``: what it finds in a repository, what it writes, and that it writes each
thing once."""

from __future__ import annotations

import tomllib
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from backout.config import load_settings
from backout.database.histories import adapter
from backout.errors import ExitCode
from tests.database.histories.tool_tables import GOOSE
from tests.helpers import write_tree
from tests.runner import run

REPOSITORY = Path(__file__).resolve().parents[2]
PYPROJECT = '[project]\nname = "shop"  # keep this comment\n\n[tool.ruff]\nline-length = 99\n'
STRATEGY = (
    "-- Migration: 001_create_a\nCREATE TABLE a (id int);\n-- ROLLBACK:\n--   DROP TABLE a;\n"
)
GOOSE_FILE = "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n"


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with a pyproject.toml and one folder of migrations, as the working directory."""
    write_tree(tmp_path, {"pyproject.toml": PYPROJECT, "migrations/001_create_a.sql": STRATEGY})
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_init_appends_the_settings_and_writes_the_ignore_line_and_postmortems_readme(
    shop: Path,
) -> None:
    result = run("init")

    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stdout.splitlines() == [
        "found migrations/ (strategy, 1 migration)",
        "history tables: not looked for (pass --database-url or set DATABASE_URL)",
        "appended to pyproject.toml: [tool.backout]",
        "created .gitignore: .backout/",
        "created ops/postmortems/README.md: how postmortems are written",
    ]
    text = (shop / "pyproject.toml").read_text()
    assert text.startswith(PYPROJECT + "\n[tool.backout]\n")
    assert tomllib.loads(text)["tool"]["backout"] == {
        "migrations": ["migrations"],
        "postmortems": "ops/postmortems",
    }
    settings = load_settings(shop, {})
    assert settings.config_file == shop / "pyproject.toml"
    assert settings.migrations == (shop / "migrations",)
    assert ".backout/" in (shop / ".gitignore").read_text().splitlines()
    readme = (shop / "ops/postmortems/README.md").read_text()
    assert readme == (REPOSITORY / "ops/postmortems/README.md").read_text()


def test_a_second_run_writes_nothing_and_says_so(shop: Path) -> None:
    run("init", "--ci", "github", "--pre-commit")
    before = snapshot(shop)

    result = run("init", "--ci", "github", "--pre-commit")

    assert result.exit_code == ExitCode.OK
    assert snapshot(shop) == before
    assert result.stdout.splitlines()[2:] == [
        "unchanged pyproject.toml: already holds backout's settings",
        "unchanged .gitignore: already ignores .backout/",
        "unchanged ops/postmortems/README.md: already there",
        "unchanged .github/workflows/migrations.yml: already there (left as it is)",
        "unchanged .pre-commit-config.yaml: already runs backout's hooks",
        "Nothing to write: the project is already set up.",
    ]


def test_dry_run_writes_nothing_and_says_what_it_would(shop: Path) -> None:
    before = snapshot(shop)

    result = run("init", "--dry-run", "--ci", "github")

    assert result.exit_code == ExitCode.OK
    assert snapshot(shop) == before
    assert result.stdout.splitlines()[2:] == [
        "would append to pyproject.toml: [tool.backout]",
        "would create .gitignore: .backout/",
        "would create ops/postmortems/README.md: how postmortems are written",
        "would create .github/workflows/migrations.yml: lint, guard, verify, status, postmortems",
    ]


def test_json_lists_the_folders_and_each_file_with_its_action(shop: Path) -> None:
    import json

    result = run("init", "--json", "--dry-run")

    data = json.loads(result.stdout)
    assert data["folders"] == [{"path": "migrations", "format": "strategy", "migrations": 1}]
    assert data["histories"] is None
    assert data["dry_run"] is True
    assert [(c["path"], c["action"]) for c in data["changes"]] == [
        ("pyproject.toml", "append"),
        (".gitignore", "create"),
        ("ops/postmortems/README.md", "create"),
    ]


def test_without_a_pyproject_it_writes_backout_toml_with_each_folders_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(
        tmp_path,
        {
            "db/migrations/20240101000000_create_b.sql": GOOSE_FILE,
            "sql/001_create_a.sql": STRATEGY,
            "node_modules/pkg/migrations/001_x.sql": STRATEGY,
            "tests/fixtures/001_x.sql": STRATEGY,
            ".hidden/001_x.sql": STRATEGY,
            "docs/postmortems/INC-1.md": "---\nid: INC-1\n---\n",
            ".gitignore": "/.venv",
        },
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)

    result = run("init")

    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stdout.splitlines()[:2] == [
        "found sql/ (strategy, 1 migration)",
        "found db/migrations/ (goose, 1 migration)",
    ]
    settings = load_settings(tmp_path, {})
    assert settings.config_file == tmp_path / "backout.toml"
    assert settings.migrations == (tmp_path / "sql", tmp_path / "db/migrations")
    assert settings.formats == {tmp_path / "db/migrations": "goose"}
    assert settings.postmortems == tmp_path / "docs/postmortems"
    assert (tmp_path / ".gitignore").read_text() == (
        "/.venv\n# backout: backups hold production rows, never commit them\n.backout/\n"
    )


def test_pre_commit_hooks_are_appended_to_an_existing_config_as_its_list_is_indented(
    shop: Path,
) -> None:
    existing = (
        "# ours\nrepos:\n-   repo: https://example.com/hooks\n    rev: v1\n"
        "    hooks:\n    -   id: x\n"
    )
    (shop / ".pre-commit-config.yaml").write_text(existing)

    result = run("init", "--pre-commit")

    assert result.exit_code == ExitCode.OK, result.stderr
    text = (shop / ".pre-commit-config.yaml").read_text()
    assert text.startswith(existing + "- repo: local\n  hooks:\n    - id: backout-lint\n")
    import yaml

    repos = yaml.safe_load(text)["repos"]
    assert [h["id"] for r in repos for h in r["hooks"]] == ["x", "backout-lint", "backout-guard"]
    assert repos[1]["hooks"][0]["files"] == r"^(migrations)/.*\.sql$"


def test_a_pre_commit_config_whose_repos_list_does_not_end_the_file_is_left_alone(
    shop: Path,
) -> None:
    existing = (
        "repos:\n  - repo: https://example.com/hooks\n    rev: v1\n    hooks: []\nci:\n  skip: []\n"
    )
    (shop / ".pre-commit-config.yaml").write_text(existing)
    before = snapshot(shop)

    result = run("init", "--pre-commit")

    assert result.exit_code == ExitCode.REFUSED
    assert "add backout's hooks by hand" in result.stderr
    assert snapshot(shop) == before


def test_the_postmortems_readme_template_is_the_repository_readme() -> None:
    from backout.templating import render

    text = render("postmortems_readme.md.j2", {"review_window_hours": 72})

    assert text == (REPOSITORY / "ops/postmortems/README.md").read_text()


def test_another_tools_history_table_in_the_database_is_configured_as_that_folders_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    write_tree(tmp_path, {"db/migrations/20240101000000_create_b.sql": GOOSE_FILE})
    table = adapter("goose").default_table
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL(GOOSE).format(sql.Identifier(table)))
    monkeypatch.chdir(tmp_path)

    result = run("init", "--database-url", database_url)

    assert result.exit_code == ExitCode.OK, result.stderr
    assert f"history of db/migrations/: goose's table {table} (found)" in result.stdout
    settings = load_settings(tmp_path, {})
    assert settings.histories == {tmp_path / "db/migrations": "goose"}
