"""``backout emergency --targets``: one incident for a fleet of real databases on one server.

The issue's "done when": on 20 databases the canary and the waves run in order, one blocked
target stops the next wave and is named, the re-run finishes the rest, the postmortem lists
every target with its outcome, and every target's history and audit agree with it.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.postmortems.front_matter import read_front_matter
from tests.faults.activity import PATIENCE, backend, running
from tests.fleet_project import PASSWORD, FleetProject
from tests.runner import run

pytestmark = pytest.mark.db

PRIORITY = "SELECT count(*) FROM information_schema.columns WHERE column_name = 'priority'"
HISTORY = "SELECT count(*) FROM schema_migrations WHERE version = '006'"
AUDIT = (
    "SELECT id, occurred_at, outcome, environment, details FROM backout_audit_event"
    " WHERE action = 'emergency' AND migration = '006_add_jobs_priority' ORDER BY id"
)
REASON = ("--reason", "checkout errors since 14:02")


def one(fleet: FleetProject, name: str, query: str) -> Any:
    return fleet.rows(name, query)[0][0]


def audit(fleet: FleetProject, name: str) -> list[tuple[Any, ...]]:
    return fleet.rows(name, AUDIT)


def committed_at(fleet: FleetProject, names: tuple[str, ...]) -> list[datetime]:
    """When each target's successful rollback transaction began (its audit row's time)."""
    return [r[1] for n in names for r in audit(fleet, n) if r[2] == "success"]


def postmortem(fleet: FleetProject) -> tuple[Path, dict[str, Any]]:
    (path,) = sorted((fleet.root / "ops" / "postmortems").glob("INC-*.md"))
    return path, read_front_matter(path.read_text())


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout


def test_twenty_targets_a_blocked_one_stops_the_next_wave_and_the_rerun_finishes(
    fleet: FleetProject,
) -> None:
    fleet.add(20)
    (never,) = fleet.add(1, applied=False)
    targets = str(fleet.targets_file())
    command = ["emergency", "006", "--targets", targets, "--yes", *REASON]
    limits = ["--lock-timeout", "1s", "--lock-retries", "0"]

    with psycopg.connect(fleet.urls["t03"], autocommit=True) as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE jobs IN ACCESS SHARE MODE")  # DROP INDEX must wait for it
        with running([*command, *limits], fleet.root) as first:
            backend(fleet.urls["t03"], "wait_event_type = 'Lock'")  # backout waits on t03
            out, err = first.communicate(timeout=PATIENCE)
        holder.execute("ROLLBACK")

    assert first.returncode == 5, err
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  t")}
    assert "t03  failed" in lines["t03"]
    assert "could not get its table locks" in lines["t03"]
    assert "rolled back" in lines["t01"]
    assert "rolled back" in lines["t02"]
    assert all("not started" in lines[f"t{n:02d}"] for n in range(4, 21))
    assert "skipped" in lines[never]
    assert "not applied" in lines[never]
    assert "wave 1/3 (canary): 1 target: 1 rolled back" in err
    assert "wave 2/3: 2 targets: 1 rolled back, 1 failed" in err
    assert "wave 3/3" not in err
    assert [one(fleet, n, PRIORITY) for n in fleet.names] == [0, 0] + [1] * 18 + [0]
    path, front = postmortem(fleet)
    assert front["steps_pending"] == [
        "roll back on the targets left: t03, t04, t05, t06, t07, t08, t09, t10, t11, t12, ..."
    ]
    outcomes = {t["name"]: t["outcome"] for t in front["targets"]}
    assert outcomes == {
        "t01": "rolled back",
        "t02": "rolled back",
        "t03": "failed",
        **{f"t{n:02d}": "not started" for n in range(4, 21)},
        never: "skipped",
    }
    first_commit = committed_at(fleet, ("t01",))[0]
    assert first_commit < min(committed_at(fleet, ("t02",)))

    import time

    t0 = time.monotonic()
    again = run(*command, "--json")
    print("rerun", time.monotonic() - t0, again.stderr)

    assert again.exit_code == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["done_earlier"] == ["t01", "t02"]
    assert result["done"] == [f"t{n:02d}" for n in range(3, 21)]
    assert result["skipped"] == [never]
    assert result["failed"] == result["not_started"] == []
    waves = [w["targets"] for w in result["waves"]]
    assert waves == [["t03"], ["t04", "t05"], [f"t{n:02d}" for n in range(6, 21)]]
    times = [committed_at(fleet, tuple(wave)) for wave in waves]
    assert max(times[0]) < min(times[1])
    assert max(times[1]) < min(times[2])
    _every_target_agrees_with_the_postmortem(fleet, never)
    _one_incident(fleet, result)
    everything = out + err + again.stdout + again.stderr + path.read_text()
    everything += git(fleet.root, "log", "-p", "--all")
    everything += "".join(p.read_text() for p in (fleet.root / ".backout").rglob("*.json"))
    assert PASSWORD not in everything


def _every_target_agrees_with_the_postmortem(fleet: FleetProject, never: str) -> None:
    """Each rolled-back target: 006 gone from its history and its catalog, one successful
    audit row naming the incident, the fleet and the target, its backup in its subfolder."""
    _, front = postmortem(fleet)
    assert not front.get("steps_pending")
    lines = {t["name"]: t for t in front["targets"]}
    for name in fleet.names:
        line, rows = lines[name], audit(fleet, name)
        if name == never:
            assert line["outcome"] == "skipped"
            assert rows == []
            assert one(fleet, name, HISTORY) == 0
            continue
        assert line["outcome"] == "rolled back", line
        assert one(fleet, name, HISTORY) == 0
        assert one(fleet, name, PRIORITY) == 0
        (success,) = [r for r in rows if r[2] == "success"]
        audit_id, _, _, environment, details = success
        assert line["audit_event"] == audit_id
        assert environment == name
        assert details["incident"] == front["id"]
        assert (details["fleet"], details["target"]) == ("targets", name)
        assert details["backup"] == line["backup"] == f".backout/backups/{front['id']}/{name}"
        assert (fleet.root / line["backup"] / "manifest.json").is_file()
    assert [r[2] for r in audit(fleet, "t03")] == ["failure", "success"]  # blocked, then done


def _one_incident(fleet: FleetProject, result: dict[str, Any]) -> None:
    """One postmortem, one deadline (from the canary's commit), one stub, one branch."""
    path, front = postmortem(fleet)
    canary = audit(fleet, "t01")[0][4]
    assert front["rolled_back_at"].replace("Z", "+00:00") == canary["rolled_back_at"]
    assert front["review_due"].replace("Z", "+00:00") == canary["review_due"]
    assert front["environment"] == "targets"
    assert front["title"] == "Rollback of 006_add_jobs_priority on fleet targets"
    stubs = sorted(p.name for p in (fleet.root / "migrations").glob("007_*"))
    assert stubs == ["007_fix_add_jobs_priority.sql"]
    assert result["incident_id"] == front["id"]
    assert git(fleet.root, "branch", "--list", "incident/*").split() == [f"incident/{front['id']}"]
    text = path.read_text()
    assert "| t03 | rolled back |" in text
    assert "\n- 20" in text  # the timeline, in the body too
    assert "t03: started" in text


def test_a_failing_canary_rolls_back_nothing_and_the_rerun_continues_the_same_incident(
    fleet: FleetProject,
) -> None:
    fleet.add(3)
    targets = str(fleet.targets_file())
    command = ["emergency", "006", "--targets", targets, "--yes", *REASON]
    command += ["--skip-rehearsal", "rehearsed by the test above"]

    with psycopg.connect(fleet.urls["t01"], autocommit=True) as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE jobs IN ACCESS SHARE MODE")
        first = run(*command, "--lock-timeout", "200ms", "--lock-retries", "0")
        holder.execute("ROLLBACK")

    assert first.exit_code == 5, first.stderr
    assert (
        "Nothing was rolled back: t01: 006_add_jobs_priority: could not get its table locks"
        in first.stdout
    )
    assert "  t02  not started" in first.stdout.splitlines()
    assert [one(fleet, n, PRIORITY) for n in fleet.names] == [1, 1, 1]
    _, front = postmortem(fleet)
    assert front["rolled_back_at"] is None
    assert [t["outcome"] for t in front["targets"]] == ["failed", "not started", "not started"]
    assert any(e["text"].startswith("rollout FAILED: t01: ") for e in front["timeline"])
    assert not list((fleet.root / "migrations").glob("007_*"))

    again = run(*command)

    assert again.exit_code == 0, again.stderr
    _, front = postmortem(fleet)  # the same incident, continued (postmortem() finds one file)
    assert [t["outcome"] for t in front["targets"]] == ["rolled back"] * 3
    assert any(e["text"].startswith("re-run by ") for e in front["timeline"])
    assert [one(fleet, n, PRIORITY) for n in fleet.names] == [0, 0, 0]
    assert (
        front["rolled_back_at"].replace("Z", "+00:00")
        == audit(fleet, "t01")[-1][4]["rolled_back_at"]
    )
