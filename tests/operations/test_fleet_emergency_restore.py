"""A real fleet emergency's backups put back with ``backout restore <INCIDENT> --all``: the rows
the rollback destroyed are back on every target, each restore audited on its own target."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.fleet_project import PASSWORD, FleetProject
from tests.runner import run

pytestmark = pytest.mark.db

PRIORITIES = "SELECT kind, priority FROM jobs ORDER BY id"
READD = "ALTER TABLE jobs ADD COLUMN priority smallint NOT NULL DEFAULT 0"
RESTORES = (
    "SELECT environment, details->>'incident' FROM backout_audit_event"
    " WHERE action = 'restore' AND outcome = 'success'"
)


def test_a_fleet_emergencys_backups_restored_with_all_bring_every_targets_rows_back(
    fleet: FleetProject,
) -> None:
    fleet.add(3)
    targets = str(fleet.targets_file())
    before = {name: fleet.rows(name, PRIORITIES) for name in fleet.names}
    emergency = run(
        *("emergency", "006", "--targets", targets, "--yes", "--reason", "checkout errors"),
        *("--skip-rehearsal", "a restore test", "--json"),
    )
    assert emergency.exit_code == 0, emergency.stderr
    incident = json.loads(emergency.stdout)["incident_id"]
    for name in fleet.names:  # the fix-forward puts the column back, empty (its default)
        with psycopg.connect(fleet.urls[name], autocommit=True) as conn:
            conn.execute(READD)
    assert {n: fleet.rows(n, PRIORITIES) for n in fleet.names} == {
        n: [("payout", 0)] for n in fleet.names
    }

    restored = run("restore", incident, "--targets", targets, "--all", "--yes", "--json")

    assert restored.exit_code == 0, restored.stderr
    shown = json.loads(restored.stdout)
    assert [t["target"] for t in shown["targets"]] == list(fleet.names)
    assert all(t["ok"] for t in shown["targets"])
    assert {n: fleet.rows(n, PRIORITIES) for n in fleet.names} == before
    assert before["t01"] == [("payout", 5)]
    assert {n: fleet.rows(n, RESTORES) for n in fleet.names} == {
        n: [(n, incident)] for n in fleet.names
    }
    assert PASSWORD not in restored.stdout + restored.stderr
