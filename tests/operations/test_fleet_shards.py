"""``backout emergency --shard I/N`` as the jobs of a CI matrix, then ``backout postmortems
merge``: one incident for the whole fleet, on real databases of one server.

Each shard runs as its own process in its own copy of the checkout (as a CI job does, on its
own machine); its part and its backups are then brought into the one folder the merge job
works in, as a CI system's artifacts are.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.git import CI_ACTORS
from backout.postmortems.front_matter import read_front_matter
from backout.postmortems.parts import read_part
from tests.faults.activity import PATIENCE, backend, kill_9, no_backout_sessions, running
from tests.fleet_project import PASSWORD, FleetProject
from tests.incident_project import ENGINEER
from tests.runner import run

pytestmark = pytest.mark.db

HISTORY = "SELECT count(*) FROM schema_migrations WHERE version = '006'"
PRIORITY = "SELECT count(*) FROM information_schema.columns WHERE column_name = 'priority'"
AUDIT = (
    "SELECT id, outcome, environment, details FROM backout_audit_event"
    " WHERE action = 'emergency' AND migration = '006_add_jobs_priority' ORDER BY id"
)
SHARDS = {1: ("t01", "t04", "t07"), 2: ("t02", "t05", "t08"), 3: ("t03", "t06", "t09")}


def command(shard: int | str, *more: str) -> list[str]:
    """The shard's command line (``shard`` is I of 3, or ``"I/N"``; ``""``: the whole fleet)."""
    slice_ = ["--shard", f"{shard}/3" if isinstance(shard, int) else shard] if shard else []
    return [
        *("emergency", "006", "--targets", "targets.txt", *slice_, "--yes"),
        *("--reason", "checkout errors since 14:02", "--skip-rehearsal", "rehearsed in CI"),
        *more,
    ]


def job(fleet: FleetProject, shard: int) -> Path:
    """A CI job's checkout: a copy of the project (the same commit), targets file and all."""
    folder = fleet.root.parent / f"job-{shard}"
    if not folder.exists():
        shutil.copytree(fleet.root, folder)
    return folder


def job_env() -> dict[str, str]:
    """This environment without what names a CI run's actor (the suite itself may run in CI):
    the job's operator is the engineer of the checkout's git configuration."""
    dropped = {"CI", *(variable for variable, _ in CI_ACTORS)}
    return {k: v for k, v in os.environ.items() if k not in dropped}


def run_shard(fleet: FleetProject, shard: int) -> dict[str, Any]:
    """The shard's job, as a process of its own; what it printed as JSON."""
    done = subprocess.run(
        [sys.executable, "-m", "backout", *command(shard, "--json")],
        cwd=job(fleet, shard),
        env=job_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    shown: dict[str, Any] = json.loads(done.stdout)
    return shown


def collect(fleet: FleetProject, shard: int) -> None:
    """The job's artifacts (its part and its backups) downloaded into the merge job's folder."""
    source = job(fleet, shard)
    for kind in ("ops/postmortems", ".backout/backups"):
        for path in (source / kind).rglob("*"):
            if path.is_file() and (".parts" in str(path) or kind == ".backout/backups"):
                copy = fleet.root / path.relative_to(source)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, copy)


def merge(*args: str) -> tuple[int, dict[str, Any]]:
    result = run("postmortems", "merge", *args, "--json")
    assert result.exit_code in (0, 3), result.stderr
    return result.exit_code, json.loads(result.stdout)


def postmortem(fleet: FleetProject) -> tuple[Path, dict[str, Any]]:
    (path,) = sorted((fleet.root / "ops" / "postmortems").glob("INC-*.md"))
    return path, read_front_matter(path.read_text())


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout


def one(fleet: FleetProject, name: str, query: str) -> Any:
    return fleet.rows(name, query)[0][0]


def test_three_shards_as_ci_jobs_make_one_incident(fleet: FleetProject) -> None:
    fleet.add(9)
    fleet.targets_file()
    shown = [run_shard(fleet, shard) for shard in (1, 2, 3)]
    for shard in (1, 2, 3):
        collect(fleet, shard)

    incident = shown[0]["incident_id"]
    assert [s["incident_id"] for s in shown] == [incident] * 3
    assert [s["done"] for s in shown] == [list(SHARDS[n]) for n in (1, 2, 3)]
    assert shown[1]["part"] == f"ops/postmortems/{incident}.parts/shard-2-of-3.json"
    assert [s["postmortem"] for s in shown] == [None] * 3
    for shard in (1, 2, 3):  # a shard writes no postmortem, no stub and no branch
        folder = job(fleet, shard)
        assert not list((folder / "ops" / "postmortems").glob("*.md"))
        assert not list((folder / "migrations").glob("007_*"))
        assert git(folder, "branch", "--list", "incident/*") == ""

    code, merged = merge()

    assert code == 0, merged
    assert merged["incident"] == incident
    assert merged["reported"] == [1, 2, 3]
    assert merged["missing"] == merged["stopped"] == merged["targets_left"] == []
    assert merged["created"] is True
    _agrees_with_every_target(fleet, incident)
    assert not (fleet.root / "ops" / "postmortems" / f"{incident}.parts").exists()
    path, _ = postmortem(fleet)
    text, tip = path.read_text(), git(fleet.root, "rev-parse", f"incident/{incident}")

    for shard in (1, 2, 3):  # the same parts downloaded again, and merged again
        collect(fleet, shard)
    again_code, again = merge(incident)

    assert again_code == 0
    assert again["written"] is False
    assert path.read_text() == text
    assert git(fleet.root, "rev-parse", f"incident/{incident}") == tip
    everything = text + git(fleet.root, "log", "-p", "--all")
    assert PASSWORD not in everything
    _the_jobs_backups_restore_every_target(fleet, incident)


def _the_jobs_backups_restore_every_target(fleet: FleetProject, incident: str) -> None:
    """The backups each job uploaded, downloaded into one folder, put every row back."""
    for name in fleet.names:  # the fix-forward puts the column back, empty
        with psycopg.connect(fleet.urls[name], autocommit=True) as conn:
            conn.execute("ALTER TABLE jobs ADD COLUMN priority smallint NOT NULL DEFAULT 0")

    restored = run("restore", incident, "--targets", "targets.txt", "--all", "--yes")

    assert restored.exit_code == 0, restored.stderr
    rows = {name: fleet.rows(name, "SELECT priority FROM jobs") for name in fleet.names}
    assert rows == {name: [(5,)] for name in fleet.names}


def _agrees_with_every_target(fleet: FleetProject, incident: str) -> None:
    """One postmortem listing the 9 targets as rolled back; each target's history and audit
    row agree with it; one deadline from the earliest commit; one stub; one branch."""
    path, front = postmortem(fleet)
    assert front["id"] == incident
    assert front["environment"] == "targets"
    assert not front.get("steps_pending")
    lines = {t["name"]: t for t in front["targets"]}
    assert sorted(lines) == list(fleet.names)
    commits = []
    for name in fleet.names:
        line = lines[name]
        assert line["outcome"] == "rolled back", line
        assert (one(fleet, name, HISTORY), one(fleet, name, PRIORITY)) == (0, 0)
        ((audit_id, outcome, environment, details),) = fleet.rows(name, AUDIT)
        assert (outcome, environment, audit_id) == ("success", name, line["audit_event"])
        assert details["incident"] == incident
        assert details["backup"] == line["backup"] == f".backout/backups/{incident}/{name}"
        assert (fleet.root / line["backup"] / "manifest.json").is_file()
        commits.append((details["rolled_back_at"], details["review_due"]))
    first_commit, its_due = min(commits)
    assert front["rolled_back_at"].replace("Z", "+00:00") == first_commit
    assert front["review_due"].replace("Z", "+00:00") == its_due
    stubs = sorted(p.name for p in (fleet.root / "migrations").glob("007_*"))
    assert stubs == ["007_fix_add_jobs_priority.sql"]
    assert front["fix_forward"] == "migrations/007_fix_add_jobs_priority.sql"
    assert git(fleet.root, "branch", "--list", "incident/*").split() == [f"incident/{incident}"]
    on_branch = git(fleet.root, "show", f"incident/{incident}:ops/postmortems/{path.name}")
    assert on_branch == path.read_text()
    text = path.read_text()
    for shard in (1, 2, 3):
        assert f"shard {shard}/3: opened by" in text
    assert "| t05 | rolled back |" in text
    texts = [e["text"] for e in front["timeline"]]  # each shard's entries in their order
    for shard in (1, 2, 3):
        opened = texts.index(
            f"shard {shard}/3: opened by {ENGINEER.name}: checkout errors since 14:02"
        )
        assert opened < texts.index(f"shard {shard}/3: part finished")


def test_a_shard_that_never_reported_keeps_the_incident_pending_until_its_part_is_merged(
    fleet: FleetProject,
) -> None:
    fleet.add(9)
    fleet.targets_file()
    for shard in (1, 2):
        run_shard(fleet, shard)
        collect(fleet, shard)

    code, merged = merge()

    assert code == 3
    assert merged["missing"] == [3]
    assert merged["steps_pending"] == ["shard 3/3 never reported: merge its part"]
    _, front = postmortem(fleet)
    assert sorted(t["name"] for t in front["targets"]) == sorted(SHARDS[1] + SHARDS[2])
    assert front["steps_pending"] == ["shard 3/3 never reported: merge its part"]
    deadline = front["review_due"]
    assert len(list((fleet.root / "migrations").glob("007_*"))) == 1

    run_shard(fleet, 3)
    collect(fleet, 3)
    code, merged = merge()

    assert code == 0, merged
    assert merged["reported"] == [1, 2, 3]
    _agrees_with_every_target(fleet, merged["incident"])
    assert postmortem(fleet)[1]["review_due"] == deadline  # the earliest commit was shard 1's


def test_a_shard_killed_mid_run_leaves_a_valid_part_and_its_rerun_completes_it(
    fleet: FleetProject,
) -> None:
    fleet.add(9)
    fleet.targets_file()
    for shard in (1, 3):
        run_shard(fleet, shard)
        collect(fleet, shard)
    folder = job(fleet, 2)

    with psycopg.connect(fleet.urls["t05"], autocommit=True) as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE jobs IN ACCESS SHARE MODE")  # its DROP COLUMN waits for it
        with running(command(2, "--lock-timeout", "10m"), folder, job_env()) as killed:
            backend(fleet.urls["t05"], "wait_event_type = 'Lock'", patience=PATIENCE)
            kill_9(killed)
        no_backout_sessions(fleet.urls["t05"])
        holder.execute("ROLLBACK")

    (path,) = (folder / "ops" / "postmortems").glob("*.parts/shard-2-of-3.json")
    part = read_part(path)  # a valid part, as far as the shard got
    assert part.finished is False
    assert {t.name: t.outcome for t in part.pm.targets}["t02"] == "rolled back"
    assert (one(fleet, "t02", HISTORY), one(fleet, "t05", HISTORY)) == (0, 1)
    collect(fleet, 2)
    code, merged = merge()
    assert code == 3
    assert merged["stopped"] == [2]
    assert "shard 2/3 did not finish: run it again, then merge its part" in merged["steps_pending"]

    again = run_shard(fleet, 2)  # the job re-run, in its checkout
    collect(fleet, 2)
    code, merged = merge()

    assert again["incident_id"] == merged["incident"] == part.incident
    assert again["done_earlier"] == ["t02"]
    assert sorted(again["done"]) == ["t05", "t08"]
    assert code == 0, merged
    _agrees_with_every_target(fleet, part.incident)


def test_a_bad_or_clashing_incident_is_refused_in_one_line(fleet: FleetProject) -> None:
    fleet.add(3)
    fleet.targets_file()
    other = fleet.root / "ops" / "postmortems" / "INC-20261126-05-other.md"
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text("---\nid: INC-20261126-05\nmigration: 003_add_markets_index\n---\n")

    done = other.with_name("INC-20261126-07-done.md")
    done.write_text(
        "---\nid: INC-20261126-07\nmigration: 006_add_jobs_priority\nenvironment: targets\n"
        "rolled_back_at: '2026-11-26T10:00:00Z'\n---\n"
    )

    bad = run(*command(1, "--incident", "incident-5"))
    finished = run(*command(1, "--incident", "inc-20261126-07"))
    clash = run(*command(1, "--incident", "INC-20261126-05"))
    untouched = [one(fleet, n, HISTORY) for n in fleet.names]
    alone = run(*command("1/1", "--incident", "INC-20261126-06"))
    one_database = run(
        *("emergency", "006", "--yes", "--reason", "x", "--incident", "INC-20261126-06"),
        *("--database-url", fleet.urls["t01"]),
    )

    assert bad.exit_code == 2
    assert "--incident 'INCIDENT-5' is not an incident id" in bad.stderr
    assert clash.exit_code == 2
    assert finished.exit_code == 2
    assert "--incident INC-20261126-07 is finished" in finished.stderr
    assert "--incident INC-20261126-05 is the incident of 003_add_markets_index" in clash.stderr
    assert alone.exit_code == 0, alone.stderr
    assert one_database.exit_code == 2
    assert "--incident is for a shard of a fleet" in one_database.stderr
    assert untouched == [1, 1, 1]
    assert [one(fleet, n, HISTORY) for n in fleet.names] == [0, 0, 0]
    assert (
        json.loads(
            (fleet.root / "ops/postmortems/INC-20261126-06.parts/shard-1-of-1.json").read_text()
        )["incident"]
        == "INC-20261126-06"
    )


def test_a_whole_fleet_rerun_folds_the_parts_it_finds_first(fleet: FleetProject) -> None:
    fleet.add(4)
    fleet.targets_file()
    first = run(*command("1/2", "--json"))
    assert first.exit_code == 0, first.stderr
    incident = json.loads(first.stdout)["incident_id"]

    whole = run(*command("", "--json"))

    assert whole.exit_code == 0, whole.stderr
    shown = json.loads(whole.stdout)
    assert shown["incident_id"] == incident
    assert shown["done_earlier"] == ["t01", "t03"]
    assert shown["done"] == ["t02", "t04"]
    _, front = postmortem(fleet)
    assert [t["outcome"] for t in front["targets"]] == ["rolled back"] * 4
    assert not front.get("steps_pending")
    assert not list((fleet.root / "ops" / "postmortems").glob("*.parts"))
