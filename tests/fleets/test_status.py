"""``backout status --targets/--fleet``: one table of migrations by target on real databases of
one server, the drift at a glance, and the exit codes (0 agree, 3 drift or --check, 1 a target
not read).

The databases are arranged through the library (apply, rollback, a DROP by hand), then the
command line is run and its table, JSON and exit code checked; the targets are checked to hold
no new object afterwards (status is read-only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings
from backout.database.connection import Target
from backout.operations.apply import apply
from backout.operations.rollback import rollback
from tests.fleets.fleet_databases import Databases, targets_file
from tests.runner import Result, run
from tests.sample_project import ME

DOWN = "postgresql://app:hunter2@127.0.0.1:1/shop"
"""A target nothing listens at (port 1): refused at once."""


def objects(url: str) -> list[Any]:
    """Every relation of the database: status must add none."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1"
        ).fetchall()


@pytest.fixture
def drifted(settings: Settings, databases: Databases) -> dict[str, str]:
    """Four targets: eu1 and eu2 at 003, us1 with 003 rolled back, us2 at 002; 003's index
    dropped by hand on eu2 (damaged)."""
    urls = dict(zip(("eu1", "eu2", "us1", "us2"), databases(4), strict=True))
    for name, url in urls.items():
        apply(settings, Target(url), ME, to="002" if name == "us2" else "003")
    rollback(settings, Target(urls["us1"]), ME, "003")
    with psycopg.connect(urls["eu2"], autocommit=True) as conn:
        conn.execute("DROP INDEX idx_markets_status_closes_at")
    return urls


def status(
    project: Path, monkeypatch: pytest.MonkeyPatch, urls: dict[str, str], *args: str
) -> Result:
    """``backout status --targets fleet.txt ARGS`` with each URL read from ``$<NAME>_URL``."""
    for name, url in urls.items():
        monkeypatch.setenv(f"{name.upper()}_URL", url)
    targets_file(project, {name: f"${name.upper()}_URL" for name in urls})
    monkeypatch.chdir(project)
    return run("status", "--targets", "fleet.txt", *args)


def test_the_table_shows_each_migration_on_each_target_and_the_drift_exits_3(
    project: Path, monkeypatch: pytest.MonkeyPatch, drifted: dict[str, str]
) -> None:
    before = {name: objects(url) for name, url in drifted.items()}

    result = status(project, monkeypatch, drifted)

    assert result.exit_code == 3, result.stderr
    assert result.stdout.splitlines() == [
        "fleet fleet: 4 targets",
        "                                     eu1      eu2      us1          us2",
        "migrations/",
        "  001_create_jobs                    applied  applied  applied      applied",
        "  002_create_core_schema             applied  applied  applied      applied",
        "  003_add_markets_index              applied  damaged  rolled_back  pending",
        "  004_alter_events_add_impact_score  pending  pending  pending      pending",
        "  005_backfill_events_impact_score   pending  pending  pending      pending",
        "  006_add_jobs_priority              pending  pending  pending      pending",
        "",
        "3 of 4 targets differ from the majority: eu2 (003_add_markets_index damaged), "
        "us1 (003_add_markets_index rolled_back), us2 (003_add_markets_index pending).",
    ]
    assert {name: objects(url) for name, url in drifted.items()} == before


def test_json_gives_each_target_and_each_migration_with_stable_keys(
    project: Path, monkeypatch: pytest.MonkeyPatch, drifted: dict[str, str]
) -> None:
    result = status(project, monkeypatch, drifted, "--json")

    assert result.exit_code == 3, result.stderr
    data = json.loads(result.stdout)
    assert (data["fleet"], data["shard"], data["agree"]) == ("fleet", None, False)
    assert data["targets"][1] == {
        "name": "eu2",
        "address": data["targets"][1]["address"],
        "read": True,
        "error": None,
        "differs_on": ["003_add_markets_index"],
    }
    third = data["migrations"][2]
    assert third == {
        "folder": "migrations",
        "version": "003",
        "name": "003_add_markets_index",
        "majority": "applied",
        "states": {"eu1": "applied", "eu2": "damaged", "us1": "rolled_back", "us2": "pending"},
        "differing": ["eu2", "us1", "us2"],
    }


def test_an_unreachable_target_is_named_without_its_password_and_exits_1(
    project: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings, databases: Databases
) -> None:
    urls = dict(zip(("eu1", "eu2"), databases(2), strict=True))
    for url in urls.values():
        apply(settings, Target(url), ME, to="001")

    result = status(project, monkeypatch, {**urls, "down": DOWN})

    assert result.exit_code == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-4] == "not read (1):"
    assert lines[-3].startswith("  down at 127.0.0.1:1/shop: cannot connect to ")
    assert lines[-1] == "2 targets agree on every migration; 1 not read."
    assert "hunter2" not in result.stdout + result.stderr


def test_targets_that_agree_exit_0_and_check_exits_3_for_what_one_database_would(
    project: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings, databases: Databases
) -> None:
    urls = dict(zip(("a", "b", "c"), databases(3), strict=True))

    pending = status(project, monkeypatch, urls)
    checked = status(project, monkeypatch, urls, "--check")
    for url in urls.values():
        apply(settings, Target(url), ME)
    applied = status(project, monkeypatch, urls, "--check")

    assert pending.exit_code == 0, pending.stderr
    assert pending.stdout.splitlines()[-1] == "3 targets agree on every migration."
    assert checked.exit_code == 3
    assert checked.stdout.splitlines()[-1] == (
        "--check: a migration is pending, modified, missing, damaged or dirty on a, b, c."
    )
    assert applied.exit_code == 0, applied.stdout
    assert objects(urls["a"]) == objects(urls["b"])


def test_a_shard_reads_only_its_slice(
    project: Path, monkeypatch: pytest.MonkeyPatch, databases: Databases
) -> None:
    urls = dict(zip(("a", "b", "c"), databases(3), strict=True))

    # by name: a, b, c, down; the first of two slices is a and c, and never reads down
    result = status(project, monkeypatch, {**urls, "down": DOWN}, "--shard", "1/2", "--json")

    assert result.exit_code == 0, result.stdout
    data = json.loads(result.stdout)
    assert (data["shard"], [t["name"] for t in data["targets"]]) == ("1/2", ["a", "c"])


def test_a_fleet_with_a_database_url_is_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = status(project, monkeypatch, {"down": DOWN}, "--database-url", DOWN)

    assert result.exit_code == 2
    assert "a fleet was given together with --database-url" in result.stderr


def test_a_target_whose_history_is_locked_is_not_read_after_a_short_wait_and_the_rest_are(
    project: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings, databases: Databases
) -> None:
    urls = dict(zip(("a", "b"), databases(2), strict=True))
    for url in urls.values():
        apply(settings, Target(url), ME, to="001")

    with psycopg.connect(urls["b"]) as holder:  # a migration running there, in effect
        holder.execute("LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE")
        result = status(project, monkeypatch, urls, "--json")

    assert result.exit_code == 1, result.stdout
    a, b = json.loads(result.stdout)["targets"]
    assert (a["read"], b["read"]) == (True, False)
    assert b["error"].startswith("a lock wait timed out"), b["error"]


def test_a_configured_fleet_is_read_by_name(
    project: Path, monkeypatch: pytest.MonkeyPatch, databases: Databases
) -> None:
    a, b = databases(2)
    monkeypatch.setenv("A_URL", a)
    monkeypatch.setenv("B_URL", b)
    with (project / "backout.toml").open("a") as config:
        config.write('[fleets.shop]\ntargets = ["a $A_URL", "b ${B_URL}"]\n')
    monkeypatch.chdir(project)

    result = run("status", "--fleet", "shop")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "fleet shop: 2 targets"
    assert result.stdout.splitlines()[-1] == "2 targets agree on every migration."
