"""``backout restore <incident> --target NAME | --all`` for a fleet incident, on real databases.

The incident is made as the fleet emergency leaves it: on each of three databases 002 applied
with rows, its rollback's backup written by the one-database writer into
``<backups>/<INCIDENT>/<target>/``, 002 rolled back, then its forward SQL applied again by hand.
The databases are checked afterwards (rows, audit rows), not only what backout printed.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings
from backout.database.connection import Target
from backout.fleets.targets import address
from backout.operations.apply import apply
from backout.operations.backup import plan_backup, write_backup
from backout.operations.rollback import rollback, rollback_sql
from backout.postmortems.collection import find, load
from tests.fleets.fleet_databases import Databases, targets_file
from tests.postmortems.samples import postmortem
from tests.runner import Result, run
from tests.sample_project import ME

INCIDENT = "INC-20261126-07"
TARGETS = ("eu1", "eu2", "us1")
TABLES = ("markets", "events")


def seed(target: str) -> str:
    return f"""
    INSERT INTO markets (slug, title, category, status) VALUES
      ('{target}-1', 'Market one', 'economy', 'open'), ('{target}-2', 'Two', 'sport', 'draft');
    INSERT INTO events (market_id, kind, headline, occurred_at) VALUES
      (1, 'news', 'first on {target}', '2026-11-24 03:00:00+00'),
      (2, 'resolution', 'ünïcode 🚀', 'infinity');
    """


def everything(url: str) -> dict[str, list[Any]]:
    with psycopg.connect(url) as conn:
        return {
            t: conn.execute(f"SELECT r::text FROM {t} AS r ORDER BY 1").fetchall() for t in TABLES
        }


def restores(url: str) -> list[Any]:
    """The audit rows of restores: the target's name and the incident."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT environment, details->>'incident' FROM backout_audit_event"
            " WHERE action = 'restore' ORDER BY id"
        ).fetchall()


@pytest.fixture
def fleet(project: Path, settings: Settings, databases: Databases) -> dict[str, Any]:
    """The three targets' URLs after the incident, and the rows each held before it."""
    urls = dict(zip(TARGETS, databases(3), strict=True))
    statements = rollback_sql(settings, "002", None, project)
    forward = (project / "migrations/002_create_core_schema.sql").read_text()
    before = {}
    for name, url in urls.items():
        apply(settings, Target(url), ME, to="002")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(seed(name))
            folder = settings.backups_folder / INCIDENT / name
            write_backup(conn, plan_backup(conn, statements), folder, now=datetime.now(UTC))
        before[name] = everything(url)
        rollback(settings, Target(url), ME, "002")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(forward)
    targets_file(project, dict(urls))
    return {"urls": urls, "before": before}


def restore(project: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.chdir(project)
    return run("restore", INCIDENT, "--targets", "fleet.txt", *args)


def test_all_restores_every_target_from_its_own_backup(
    project: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, fleet: dict[str, Any]
) -> None:
    (settings.postmortems / f"{INCIDENT}-fleet.md").parent.mkdir(parents=True)
    (settings.postmortems / f"{INCIDENT}-fleet.md").write_text(postmortem(INCIDENT))

    result = restore(project, monkeypatch, "--all", "--yes")

    assert result.exit_code == 0, result.stdout + result.stderr
    for name, url in fleet["urls"].items():
        assert everything(url) == fleet["before"][name]
        assert restores(url) == [(name, INCIDENT)]
    lines = result.stdout.splitlines()
    assert lines[0] == f"restored the backups of {INCIDENT}, target by target (parents first):"
    assert lines[1].startswith(f"  eu1 at {address(fleet['urls']['eu1'])}: ")
    assert re.search(r": public\.markets 2 rows, public\.events 2 rows; audit event \d+$", lines[1])
    timeline = [e.text for e in find(load(settings.postmortems), INCIDENT).pm.timeline]
    assert [t.split(":")[0] for t in timeline] == [f"backup restored on {n}" for n in TARGETS]


def test_a_target_that_fails_is_named_and_the_others_are_still_restored(
    project: Path, monkeypatch: pytest.MonkeyPatch, fleet: dict[str, Any]
) -> None:
    eu2 = fleet["urls"]["eu2"]
    with psycopg.connect(eu2, autocommit=True) as conn:
        conn.execute("INSERT INTO markets (slug, title, category) VALUES ('new', 'n', 'c')")
    earlier = everything(eu2)

    result = restore(project, monkeypatch, "--all", "--yes", "--json")

    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["failed"] == ["eu2"]
    assert [(t["target"], t["ok"], t["exit_code"]) for t in data["targets"]] == [
        ("eu1", True, 0),
        ("eu2", False, 4),
        ("us1", True, 0),
    ]
    assert "public.markets is not empty (1 rows)" in data["targets"][1]["error"]
    assert everything(eu2) == earlier
    assert restores(eu2) == []
    for name in ("eu1", "us1"):
        assert everything(fleet["urls"][name]) == fleet["before"][name]


def test_one_target_alone_leaves_the_others_as_they_were(
    project: Path, monkeypatch: pytest.MonkeyPatch, fleet: dict[str, Any]
) -> None:
    result = restore(project, monkeypatch, "--target", "us1", "--yes")

    assert result.exit_code == 0, result.stderr
    assert everything(fleet["urls"]["us1"]) == fleet["before"]["us1"]
    assert everything(fleet["urls"]["eu1"]) == {"markets": [], "events": []}
    assert restores(fleet["urls"]["eu1"]) == []


def test_one_target_that_is_refused_exits_as_one_database_would(
    project: Path, monkeypatch: pytest.MonkeyPatch, fleet: dict[str, Any]
) -> None:
    folder = project / ".backout/backups" / INCIDENT / "eu1"
    damaged = sorted(folder.glob("*.copy"))[0]
    damaged.write_bytes(damaged.read_bytes() + b"\x00")

    result = restore(project, monkeypatch, "--target", "eu1", "--yes")

    assert result.exit_code == 4
    assert damaged.name in result.stderr
    assert everything(fleet["urls"]["eu1"]) == {"markets": [], "events": []}


def test_a_dry_run_checks_every_target_and_changes_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch, fleet: dict[str, Any]
) -> None:
    result = restore(project, monkeypatch, "--all", "--dry-run")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("would restore the backups of")
    assert [everything(url) for url in fleet["urls"].values()] == [
        {"markets": [], "events": []}
    ] * 3


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--target", "ap1"), "target 'ap1' is not in fleet fleet"),
        ((), "a fleet incident is restored one target or all, and no target was chosen"),
        (("--all", "--target", "eu1"), "--target and --all were both given"),
    ],
)
def test_choices_that_cannot_work_are_refused_before_anything(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    fleet: dict[str, Any],
    args: tuple[str, ...],
    said: str,
) -> None:
    result = restore(project, monkeypatch, *args, "--yes")

    assert result.exit_code == 2
    assert said in result.stderr
    assert all(restores(url) == [] for url in fleet["urls"].values())


def test_a_backup_of_a_target_the_fleet_does_not_list_is_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch, fleet: dict[str, Any]
) -> None:
    targets_file(project, {"eu1": fleet["urls"]["eu1"]})

    result = restore(project, monkeypatch, "--all", "--yes")

    assert result.exit_code == 2
    assert "the incident has backups of eu2, us1, which fleet fleet does not list" in result.stderr
    assert restores(fleet["urls"]["eu1"]) == []


def test_a_fleet_incident_without_a_fleet_says_how_to_restore_it(
    project: Path, monkeypatch: pytest.MonkeyPatch, fleet: dict[str, Any]
) -> None:
    monkeypatch.chdir(project)

    result = run("restore", INCIDENT, "--database-url", fleet["urls"]["eu1"], "--yes")

    assert result.exit_code == 2
    assert "it is a fleet incident, one backup per target" in result.stderr


def test_a_shard_restores_its_slice_and_leaves_the_rest_to_the_other_jobs(
    project: Path, monkeypatch: pytest.MonkeyPatch, fleet: dict[str, Any]
) -> None:
    # by name: eu1, eu2, us1; the first of two slices is eu1 and us1
    result = restore(project, monkeypatch, "--all", "--shard", "1/2", "--yes")

    assert result.exit_code == 0, result.stderr
    assert "left to the other shards: eu2" in result.stdout
    assert [bool(restores(url)) for url in fleet["urls"].values()] == [True, False, True]


class Terminal(io.StringIO):
    """Standard input as a person at a terminal types it."""

    def isatty(self) -> bool:
        return True


def test_without_yes_every_targets_plan_is_shown_and_the_incident_id_must_be_typed(
    project: Path, monkeypatch: pytest.MonkeyPatch, fleet: dict[str, Any]
) -> None:
    refused = restore(project, monkeypatch, "--all")
    monkeypatch.setattr("sys.stdin", Terminal("INC-20261126-99\n"))
    mistyped = restore(project, monkeypatch, "--all")
    monkeypatch.setattr("sys.stdin", Terminal(f"{INCIDENT.lower()}\n"))
    typed = restore(project, monkeypatch, "--all")

    assert (refused.exit_code, mistyped.exit_code) == (4, 4)
    assert "needs confirmation and this is not a terminal" in refused.stderr
    assert "not confirmed; nothing was restored" in mistyped.stderr
    assert typed.exit_code == 0, typed.stderr
    assert typed.stderr.startswith(f"would restore the backups of {INCIDENT}")
    for name, url in fleet["urls"].items():
        assert restores(url) == [(name, INCIDENT)]
