"""``backout rollback --targets/--fleet``: a planned rollback on every database of a fleet,
and the dry runs of it and of the emergency, which change nothing anywhere."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fleet_project import PASSWORD, FleetProject
from tests.runner import run

pytestmark = pytest.mark.db

AUDIT = (
    "SELECT action, outcome, environment, details->>'fleet', details->>'target'"
    " FROM backout_audit_event WHERE migration = '006_add_jobs_priority' ORDER BY id"
)
UNREACHABLE = "tX postgresql://app:unreachable-s3cret@127.0.0.1:1/nothing"
SNAPSHOT = {
    "catalog": "SELECT table_name, column_name, data_type FROM information_schema.columns"
    " WHERE table_schema = 'public' ORDER BY 1, 2",
    "indexes": "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
    "jobs": "SELECT * FROM jobs ORDER BY id",
    "history": "SELECT version, name FROM schema_migrations ORDER BY version",
    "audit": "SELECT count(*) FROM backout_audit_event",
}


def snapshot(fleet: FleetProject) -> dict[str, dict[str, list[tuple[Any, ...]]]]:
    """Every target's catalog, rows, history and audit trail."""
    return {n: {k: fleet.rows(n, q) for k, q in SNAPSHOT.items()} for n in fleet.names}


def test_each_target_is_rolled_back_with_the_fleet_and_its_name_in_its_audit_row(
    fleet: FleetProject,
) -> None:
    fleet.add(4)
    (never,) = fleet.add(1, applied=False)
    targets = str(fleet.targets_file())

    result = run("rollback", "006", "--targets", targets, "--yes", "--concurrency", "2", "--json")

    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["done"], shown["skipped"]) == (["t01", "t02", "t03", "t04"], [never])
    assert [w["targets"] for w in shown["waves"]] == [["t01"], ["t02"], ["t03", "t04"]]
    for name in ("t01", "t02", "t03", "t04"):
        assert fleet.rows(name, SNAPSHOT["history"])[-1][0] == "005"
        assert fleet.rows(name, AUDIT)[-1] == ("rollback", "success", name, "targets", name)
        assert ("jobs", "priority", "smallint") not in fleet.rows(name, SNAPSHOT["catalog"])
    assert fleet.rows(never, AUDIT) == []
    assert "wave 3/3: 2 targets: 2 rolled back" in result.stderr

    again = run("rollback", "006", "--targets", targets, "--yes")

    assert again.exit_code == 0, again.stderr
    assert again.stdout.splitlines()[0] == (
        "Rollback of 006_add_jobs_priority on fleet targets: 4 rolled back earlier, 1 skipped."
    )
    assert "  t05  skipped             not applied" in again.stdout


def test_an_unreachable_target_fails_named_by_its_redacted_url_and_the_rest_never_start(
    fleet: FleetProject,
) -> None:
    fleet.add(2)
    targets = fleet.targets_file(extra=[UNREACHABLE])
    text = targets.read_text().splitlines()
    targets.write_text("\n".join([text[0], text[1], text[3], text[2]]) + "\n")  # t01, tX, t02

    result = run("rollback", "006", "--targets", str(targets), "--yes", "--waves", "1")

    assert result.exit_code == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "Rollback of 006_add_jobs_priority on fleet targets: 1 rolled back, 1 failed, "
        "1 not started."
    )
    (failed,) = [line for line in lines if line.startswith("  tX")]
    assert "failed" in failed
    assert "cannot connect to postgresql://app:***@127.0.0.1:1/nothing" in failed
    assert "  t02  not started" in lines
    assert lines[-1].startswith("Stopped at the first failure: tX (exit 1)")
    assert fleet.rows("t02", SNAPSHOT["history"])[-1][0] == "006"  # never started
    assert "unreachable-s3cret" not in result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["rollback", "emergency"])
def test_a_dry_run_on_every_target_changes_nothing_anywhere(
    fleet: FleetProject, command: str
) -> None:
    fleet.add(3)
    targets = str(fleet.targets_file())
    before = snapshot(fleet)
    reason = ["--reason", "checkout errors"] if command == "emergency" else []

    result = run(command, "006", "--targets", targets, "--dry-run", "--json", *reason)

    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["done"] == ["t01", "t02", "t03"]
    for target in shown["targets"]:
        assert [line.split()[0] for line in target["dry_run"]] == ["ok"] * 3
        assert target["blast_radius"]["migration"] == "006_add_jobs_priority"
    assert snapshot(fleet) == before
    assert not (fleet.root / "ops" / "postmortems").exists()
    assert not (fleet.root / ".backout").exists()
    assert not list((fleet.root / "migrations").glob("007_*"))


def test_a_fleet_where_the_migration_is_applied_nowhere_is_refused(fleet: FleetProject) -> None:
    fleet.add(2, applied=False)
    targets = str(fleet.targets_file())

    result = run("emergency", "006", "--targets", targets, "--yes", "--reason", "x")

    assert result.exit_code == 4
    assert "006_add_jobs_priority is not applied on any target of fleet targets" in result.stderr
    assert not (fleet.root / "ops" / "postmortems").exists()


def test_a_fleet_that_requires_approval_is_refused_without_it(fleet: FleetProject) -> None:
    fleet.add(2)
    fleet.targets_file(name="tenants.txt")
    with (fleet.root / "backout.toml").open("a") as config:
        config.write('[fleets.tenants]\ntargets = "tenants.txt"\nrequire_approval = true\n')
    before = snapshot(fleet)

    result = run("rollback", "006", "--fleet", "tenants", "--yes")

    assert result.exit_code == 4
    assert "environment 'tenants' requires approval" in result.stderr
    assert snapshot(fleet) == before


def test_a_fleet_and_one_database_at_once_are_refused(fleet: FleetProject) -> None:
    fleet.add(1)
    targets = str(fleet.targets_file())

    result = run("rollback", "006", "--targets", targets, "--database-url", fleet.urls["t01"])

    assert result.exit_code == 2
    assert "a fleet was given together with --database-url or --env" in result.stderr


def test_an_approved_fleet_rollback_is_rehearsed_and_each_target_audits_the_approval(
    fleet: FleetProject,
) -> None:
    fleet.add(2)
    fleet.targets_file(name="tenants.txt")
    with (fleet.root / "backout.toml").open("a") as config:
        config.write('[fleets.tenants]\ntargets = "tenants.txt"\nrequire_approval = true\n')
    approval = "SELECT approver, details->>'rehearsal' FROM backout_audit_event"
    approval += " WHERE action = 'approval'"

    result = run(
        "rollback", "006", "--fleet", "tenants", "--yes", "--approved-by", "Grace",
        "--reason", "priority breaks the claim query",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    for name in fleet.names:
        assert fleet.rows(name, approval) == [("Grace", "passed")]
        assert fleet.rows(name, AUDIT)[-1] == ("rollback", "success", name, "tenants", name)
