"""The text ``backout init`` writes: the configuration table, the ignore line, the GitHub
workflow and the pre-commit hooks. Pure: what was detected in, text out."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from backout import __version__
from backout.project.detection import Detected
from backout.project.histories import FoundHistory

BACKUPS_IGNORE = ".backout/"
WORKFLOW = ".github/workflows/migrations.yml"
PRE_COMMIT = ".pre-commit-config.yaml"
HOOK_IDS = ("backout-lint", "backout-guard")
PREVIEW_SECRET = "PREVIEW_DATABASE_URL"


def config_table(detected: Detected, histories: Sequence[FoundHistory], *, pyproject: bool) -> str:
    """backout's settings for what was detected: ``[tool.backout]`` for a ``pyproject.toml``,
    top-level keys for a ``backout.toml``."""
    folders = [f.path for f in detected.folders] or ["migrations"]
    lines = [
        "[tool.backout]" if pyproject else "# backout's settings (see its README: Configuration)",
        *(["# backout's settings (see its README: Configuration)"] if pyproject else []),
        f"migrations = [{', '.join(_string(f) for f in folders)}]",
        f"postmortems = {_string(detected.postmortems)}",
    ]
    formats = {f.path: f.format for f in detected.folders if f.format != "strategy"}
    if formats:
        lines.append(f"formats = {_inline(formats)}")
    foreign = {h.folder: h.tool for h in histories if h.foreign}
    if foreign:
        lines.append(
            "# backout reads and writes these tools' history tables (found in the database)"
        )
        lines.append(f"histories = {_inline(foreign)}")
    return "\n".join(lines) + "\n"


def _string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def _inline(table: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{_string(k)} = {_string(v)}" for k, v in table.items()) + " }"


def ignores_backups(gitignore: str) -> bool:
    """Whether a ``.gitignore`` already keeps the backups folder out of git."""
    for line in gitignore.splitlines():
        pattern = line.strip().removeprefix("/").removesuffix("*").removesuffix("/")
        if pattern in (".backout", ".backout/backups"):
            return True
    return False


def gitignore_lines() -> str:
    return f"# backout: backups hold production rows, never commit them\n{BACKUPS_IGNORE}\n"


def sql_files_pattern(folders: Sequence[str]) -> str:
    """The regular expression pre-commit matches staged paths against: ``.sql`` files under
    the migration folders (at any depth: some formats use sub-folders)."""
    alternatives = "|".join(re.escape(f) for f in folders) or "migrations"
    return f"^({alternatives})/.*\\.sql$"


def pre_commit_hooks(folders: Sequence[str], indent: int) -> str:
    """The ``repo: local`` entry of ``.pre-commit-config.yaml`` running the two hooks with the
    project's own ``backout``; its ``-`` at column ``indent``."""
    pattern = sql_files_pattern(folders)
    entry = f"""- repo: local
  hooks:
    - id: backout-lint
      name: backout lint (migration files)
      entry: backout lint
      language: system
      files: '{pattern}'
    - id: backout-guard
      name: backout guard (committed migrations stay as they are)
      entry: backout guard
      language: system
      files: '{pattern}'
      pass_filenames: false
"""
    return "".join(" " * indent + line + "\n" for line in entry.splitlines())


def pre_commit_config(folders: Sequence[str]) -> str:
    return "repos:\n" + pre_commit_hooks(folders, 2)


_WORKFLOW = """\
# Written by `backout init --ci github`: lint, guard and verify the migrations, check the
# postmortems, and compare a preview database with the files when its URL is a secret.
name: migrations

on:
  pull_request:
  push:
    branches: [@BRANCH@]

permissions:
  contents: read

jobs:
  migrations:
    runs-on: ubuntu-latest
    services:
      postgres:
        image: postgres:17
        env:
          # A throwaway server for `backout verify`'s scratch databases: no password needed.
          POSTGRES_HOST_AUTH_METHOD: trust
        ports:
          - 5432:5432
        options: >-
          --health-cmd pg_isready
          --health-interval 2s
          --health-timeout 5s
          --health-retries 30
    env:
      SCRATCH_DATABASE_URL: postgresql://postgres@localhost:5432/postgres
      @PREVIEW@: ${{ secrets.@PREVIEW@ }}
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0  # the base branch, for `backout guard`
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - name: Install backout
        run: pip install "backout==@VERSION@"  # or your project's own install step
      - name: Lint the migrations
        run: backout lint --format github
      - name: Committed migrations stay as they are
        if: github.event_name == 'pull_request'
        run: backout guard --base "origin/$GITHUB_BASE_REF" --format github
      - name: Roll back every migration on a scratch database
        run: backout verify --all --scratch-database-url "$SCRATCH_DATABASE_URL"
      - name: The preview database matches the files
        if: env.@PREVIEW@ != ''
        run: backout status --check --database-url "$@PREVIEW@"
      - name: Postmortems
        run: backout postmortems check --format github
"""


def github_workflow(branch: str) -> str:
    """``.github/workflows/migrations.yml`` for a repository whose main branch is ``branch``."""
    return (
        _WORKFLOW.replace("@BRANCH@", branch)
        .replace("@PREVIEW@", PREVIEW_SECRET)
        .replace("@VERSION@", __version__)
    )
