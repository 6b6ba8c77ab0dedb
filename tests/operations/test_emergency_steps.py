"""The emergency's list of named steps, in memory: the strategy's order, what a failure notes,
and how the steps' products add up. The procedure itself runs in test_emergency.py."""

from __future__ import annotations

from pathlib import Path

from backout.errors import RefusedError
from backout.operations.emergency.model import Produced, Step
from backout.operations.emergency.procedure import after_commit_failure, failure_note
from backout.operations.emergency.steps import DRY_RUN, ROLL_BACK


def names(steps: tuple[Step, ...]) -> list[str]:
    return [s.name for s in steps]


def test_the_procedure_follows_the_strategy_in_order() -> None:
    assert names(ROLL_BACK) == [
        "check it is safe",
        "measure the blast radius",
        "rehearse on a scratch database",
        "pre-flight",
        "confirm",
        "open the incident",
        "take the migration lock",
        "back up",
        "roll back",
        "check the schema",
        "smoke checks",
        "release the lock",
        "write the fix-forward stub",
        "complete the postmortem",
        "log the decision",
        "record in git",
    ]


def test_a_dry_run_stops_before_anything_that_writes() -> None:
    assert names(DRY_RUN) == [
        "check it is safe",
        "measure the blast radius",
        "rehearse on a scratch database",
        "plan the backup",
        "dry run on the target",
    ]


def test_every_step_under_the_lock_names_its_stage_in_the_timeline_when_it_fails() -> None:
    stages = {s.name: s.failure for s in ROLL_BACK if s.failure is not None}
    assert stages == {
        "take the migration lock": "waiting for the migration lock",
        "back up": "backup",
        "roll back": "rollback",
    }


def test_every_step_after_the_rollback_is_one_a_rerun_can_finish() -> None:
    after = [s.name for s in ROLL_BACK if s.after_commit]
    assert after == names(ROLL_BACK)[names(ROLL_BACK).index("roll back") + 1 :]


def test_a_failure_after_the_commit_never_says_nothing_was_rolled_back() -> None:
    said = after_commit_failure("check the schema", RefusedError("canceling statement"))
    assert said == (
        "check the schema FAILED after the rollback committed: canceling statement; "
        "run the same command again to finish the incident"
    )


def test_a_failure_before_the_rollback_says_nothing_was_rolled_back() -> None:
    refused = RefusedError("disk full", hint="free some space")
    assert failure_note("backup", refused) == "backup FAILED: disk full; nothing was rolled back"
    assert failure_note("rollback", refused) == "rollback FAILED: disk full"
    assert failure_note("smoke checks", KeyboardInterrupt()) == (
        "smoke checks FAILED: interrupted; nothing was rolled back"
    )
    assert failure_note("rollback", ValueError("x")) == (
        "rollback FAILED: internal error: ValueError: x"
    )


def test_what_a_step_produced_is_added_and_never_unsets_an_earlier_product() -> None:
    made = Produced(scratch_rehearsal="passed", backup_folder=Path("b"))
    made = made.merged(Produced(schema_check="restored"))
    assert (made.scratch_rehearsal, made.backup_folder, made.schema_check) == (
        "passed",
        Path("b"),
        "restored",
    )
