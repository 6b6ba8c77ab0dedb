"""lint's cache of findings per file (.backout/cache/lint.json): cold, warm and parallel runs
print the same bytes, and an edit, a setting or a new version lints the file again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from backout import cache as cache_module
from backout.migrations import catalog
from tests.runner import Result, run

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lint"
CACHE = Path(".backout") / "cache" / "lint.json"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose migrations trigger every lock-safety rule, and one broken file."""
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n')
    folder = tmp_path / "migrations"
    folder.mkdir()
    rules = sorted(p.name for p in FIXTURES.iterdir())
    for n, rule in enumerate(rules, start=1):
        text = (FIXTURES / rule / "triggers.sql").read_text()
        (folder / f"{n:03d}_{rule.replace('-', '_')}.sql").write_text(text)
    (folder / f"{len(rules) + 2:03d}_gap.sql").write_text("SELEC 1;\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def lint(*args: str) -> dict[str, Result]:
    return {f: run("lint", "--format", f, *args) for f in ("text", "json", "github")}


def test_cold_warm_and_parallel_runs_print_the_same(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cold = lint()
    assert (project / CACHE).is_file()
    warm = lint()
    (project / CACHE).unlink()
    monkeypatch.setattr(catalog, "PARALLEL_FROM", 2)
    parallel = lint()
    named = lint("migrations")

    assert cold == warm == parallel
    assert {f: r.stdout for f, r in named.items()} == {f: r.stdout for f, r in cold.items()}
    findings = json.loads(cold["json"].stdout)["findings"]
    assert {f["rule"] for f in findings} >= {"rename", "version-gap", "sql-syntax"}


def test_an_edit_that_keeps_size_and_mtime_is_linted_again(project: Path) -> None:
    original = run("lint", "--format", "json")
    path = project / "migrations" / "001_enum_value_in_transaction.sql"
    before = path.stat()
    path.write_text(path.read_text().replace("ALTER TYPE", "ALTER TYPO", 1))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size

    edited = run("lint", "--format", "json")
    (project / CACHE).unlink()

    assert edited != original
    assert edited == run("lint", "--format", "json")


def test_a_change_of_settings_lints_again(project: Path) -> None:
    before = json.loads(run("lint", "--format", "json").stdout)["findings"]
    (project / "backout.toml").write_text(
        'migrations = ["migrations"]\nlint_lock_timeout = "required"\n'
    )

    after = json.loads(run("lint", "--format", "json").stdout)["findings"]

    assert len(after) > len(before)
    assert {f["rule"] for f in after} - {f["rule"] for f in before} == {"lock-timeout"}


def test_a_new_version_does_not_read_an_older_ones_cache(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = run("lint", "--format", "json")
    payload = json.loads((project / CACHE).read_text())
    for entry in payload["entries"].values():
        entry["findings"] = []
    (project / CACHE).write_text(json.dumps(payload))
    assert json.loads(run("lint", "--format", "json").stdout)["findings"] == [
        f for f in json.loads(expected.stdout)["findings"] if f["rule"] == "version-gap"
    ]  # what the cache holds is what is reported: so a new version must not read it

    monkeypatch.setattr(cache_module, "__version__", "99.0.0")

    assert run("lint", "--format", "json") == expected
