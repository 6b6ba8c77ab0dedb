"""Rendering a fleet run (pure): the confirmation, the targets' lines and the JSON keys."""

from __future__ import annotations

from backout.cli.render_fleet import fleet_json, plan_text, prompt, targets_text
from backout.database.connection import Target
from backout.errors import ExitCode
from backout.fleets.targets import Fleet
from backout.operations.fleet.engine import Rollout, Status, TargetOutcome, WaveReport
from backout.operations.fleet.model import FleetPlan, FleetResult

FLEET = Fleet(
    "tenants",
    tuple(
        Target(f"postgresql://app:s3cret@db{n}.internal/app", label=f"t0{n}") for n in range(1, 5)
    ),
)


def result(dry_run: bool = False) -> FleetResult:
    canary = WaveReport(1, 2, (TargetOutcome("t01", Status.DONE, "schema check: ok"),), 0.2)
    wave = WaveReport(
        2,
        2,
        (
            TargetOutcome("t02", Status.FAILED, "blocked by pid 7", ExitCode.LOCKED, 1.5),
            TargetOutcome("t03", Status.NOT_STARTED),
        ),
        1.5,
    )
    rollout = Rollout((canary, wave), (wave.outcomes[0],))
    skipped = (TargetOutcome("t04", Status.SKIPPED, "not applied"),)
    return FleetResult(FLEET, "006_add_jobs_priority", "rollback", dry_run, rollout, skipped)


def test_every_target_has_a_line_with_its_outcome_and_the_first_failure_is_named() -> None:
    assert targets_text(result()) == [
        "Rollback of 006_add_jobs_priority on fleet tenants: 1 rolled back, 1 skipped, "
        "1 failed, 1 not started.",
        "  t01  rolled back         schema check: ok",
        "  t02  failed              blocked by pid 7",
        "  t03  not started",
        "  t04  skipped             not applied",
        "Stopped at the first failure: t02 (exit 5); run the same command again to continue "
        "with the targets left.",
    ]


def test_the_json_has_every_target_with_its_redacted_url_and_the_lists_by_outcome() -> None:
    shown = fleet_json(result())

    assert shown["exit_code"] == 5
    assert (shown["done"], shown["failed"], shown["not_started"], shown["skipped"]) == (
        ["t01"],
        ["t02"],
        ["t03"],
        ["t04"],
    )
    assert [w["targets"] for w in shown["waves"]] == [["t01"], ["t02", "t03"]]
    assert shown["targets"][1]["url"] == "postgresql://app:***@db2.internal/app"
    assert shown["targets"][1]["outcome"] == "failed"
    assert "s3cret" not in str(shown)


def test_the_confirmation_shows_the_waves_and_the_targets_left_alone() -> None:
    plan = FleetPlan(
        "emergency",
        FLEET,
        "006_add_jobs_priority",
        "006",
        (),
        (("t01",), ("t02", "t03")),
        (TargetOutcome("t04", Status.SKIPPED, "not applied"),),
    )

    assert plan_text(plan).splitlines() == [
        "emergency of 006_add_jobs_priority on fleet tenants: 3 targets in 2 waves, at most 4 "
        "at once; stops at the first failure",
        "  canary: 1 target: t01",
        "  wave 2: 2 targets: t02, t03",
        "  skipped: t04 (not applied)",
    ]
    assert (
        prompt(plan) == "Type 006 to roll back 006_add_jobs_priority on 3 targets of fleet tenants"
    )


def test_a_dry_run_shows_each_targets_locks_removals_and_what_would_fail() -> None:
    blast = {
        "statements": [
            {
                "line": 30,
                "locks": [{"relation": "jobs", "mode": "ACCESS EXCLUSIVE", "rows": 12000}],
                "removes": [{"type": "index"}, {"type": "table column"}],
                "blocked_by": [{"pid": 7}],
                "failure": None,
            },
            {
                "line": 31,
                "locks": [{"relation": "jobs", "mode": "ACCESS EXCLUSIVE", "rows": 12000}],
                "removes": [],
                "blocked_by": [],
                "failure": "cannot drop table jobs because other objects depend on it",
            },
        ],
        "damage": {"007_add_view": ["view public.v"]},
    }
    ran = ["ok      line 30: DROP INDEX i", "FAILED  line 31: DROP TABLE jobs: cannot drop"]
    outcome = TargetOutcome(
        "t01", Status.FAILED, "line 31 failed", details={"blast_radius": blast, "dry_run": ran}
    )
    rollout = Rollout((WaveReport(1, 1, (outcome,), 0.1),), (outcome,))
    shown = targets_text(FleetResult(FLEET, "006_x", "rollback", True, rollout))

    assert shown[1:] == [
        "  t01  failed              line 31 failed",
        "       locks ACCESS EXCLUSIVE on jobs (12,000 rows); removes 2 objects; 1 sessions "
        "hold or wait for a conflicting lock; line 31 WOULD FAIL: cannot drop table jobs "
        "because other objects depend on it; damages 007_add_view",
        "       FAILED  line 31: DROP TABLE jobs: cannot drop",
    ]
