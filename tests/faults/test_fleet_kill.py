"""A fleet emergency killed (SIGKILL) mid-wave, while one target waits for a table lock: what
committed stays committed, the waiting target's transaction is gone with the process, and the
same command again finishes the rollout in the same incident."""

from __future__ import annotations

import json
import signal
from typing import Any

import psycopg
import pytest

from backout.postmortems.front_matter import read_front_matter
from tests.faults.activity import backend, kill_9, no_backout_sessions, running
from tests.fleet_project import FleetProject
from tests.runner import run

pytestmark = pytest.mark.db

HISTORY = "SELECT count(*) FROM schema_migrations WHERE version = '006'"
SUCCESSES = (
    "SELECT count(*) FROM backout_audit_event WHERE action = 'emergency' AND outcome = 'success'"
)


def one(fleet: FleetProject, name: str, query: str) -> Any:
    return fleet.rows(name, query)[0][0]


def test_a_fleet_emergency_killed_mid_wave_is_finished_by_the_rerun(
    fleet: FleetProject,
) -> None:
    fleet.add(6)
    targets = str(fleet.targets_file())
    command = ["emergency", "006", "--targets", targets, "--yes", "--reason", "checkout errors"]
    command += ["--skip-rehearsal", "a fault test", "--waves", "1,rest", "--concurrency", "2"]

    with psycopg.connect(fleet.urls["t04"], autocommit=True) as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE jobs IN ACCESS SHARE MODE")
        with running([*command, "--lock-timeout", "10m"], fleet.root) as first:
            backend(fleet.urls["t04"], "wait_event_type = 'Lock'")  # t04 waits in wave 3
            kill_9(first)
        no_backout_sessions(fleet.urls["t04"])
        holder.execute("ROLLBACK")

    assert [one(fleet, n, HISTORY) for n in ("t01", "t02", "t04")] == [0, 0, 1]
    assert one(fleet, "t04", SUCCESSES) == 0

    again = run(*command, "--json")

    assert again.exit_code == 0, again.stderr
    shown = json.loads(again.stdout)
    assert {"t01", "t02"} <= set(shown["done_earlier"])
    assert "t04" in shown["done"]
    assert sorted(shown["done"] + shown["done_earlier"]) == list(fleet.names)
    assert [one(fleet, n, HISTORY) for n in fleet.names] == [0] * 6
    assert [one(fleet, n, SUCCESSES) for n in fleet.names] == [1] * 6  # each rolled back once
    (path,) = (fleet.root / "ops" / "postmortems").glob("INC-*.md")
    front = read_front_matter(path.read_text())
    assert [t["outcome"] for t in front["targets"]] == ["rolled back"] * 6
    assert not front.get("steps_pending")


def test_ctrl_c_mid_wave_lets_the_running_targets_finish_and_says_what_committed(
    fleet: FleetProject,
) -> None:
    fleet.add(4)
    targets = str(fleet.targets_file())
    command = ["emergency", "006", "--targets", targets, "--yes", "--reason", "checkout errors"]
    command += ["--skip-rehearsal", "a fault test", "--waves", "1,rest", "--concurrency", "1"]

    with psycopg.connect(fleet.urls["t03"], autocommit=True) as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE jobs IN ACCESS SHARE MODE")
        with running([*command, "--lock-timeout", "10m"], fleet.root) as first:
            backend(fleet.urls["t03"], "wait_event_type = 'Lock'")  # t03 waits in wave 3
            first.send_signal(signal.SIGINT)
            holder.execute("ROLLBACK")  # t03 was let finish: it now gets its lock and commits
            _, stderr = first.communicate()

    assert first.returncode == 130
    assert "backout: interrupted" in stderr
    assert [one(fleet, n, HISTORY) for n in fleet.names] == [0, 0, 0, 1]  # t04 never started
    (path,) = (fleet.root / "ops" / "postmortems").glob("INC-*.md")
    front = read_front_matter(path.read_text())
    said = [e["text"] for e in front["timeline"] if e["text"].startswith("rollout ")]
    assert said == [
        "rollout interrupted: rolled back on 3 targets (t01, t02, t03); the targets already "
        "running were let finish; run the same command again to continue"
    ]
    assert "roll out across the fleet" in front["steps_pending"]

    again = run(*command, "--json")

    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["done"] == ["t04"]
    assert [one(fleet, n, SUCCESSES) for n in fleet.names] == [1] * 4
