"""A fleet emergency killed (SIGKILL) mid-wave, while one target waits for a table lock: what
committed stays committed, the waiting target's transaction is gone with the process, and the
same command again finishes the rollout in the same incident."""

from __future__ import annotations

import json
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
