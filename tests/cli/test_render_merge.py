"""Rendering ``backout postmortems merge`` (pure): which shards reported, what is pending."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from backout.cli.render_postmortems import merged_json, merged_text
from backout.operations.fleet.merge import Merged, pending
from backout.postmortems.model import Postmortem, TargetLine
from backout.postmortems.parts import Folded

PM = Postmortem(
    id="INC-20261126-01",
    title="Rollback of 006_add_jobs_priority on fleet tenants",
    severity="SEV2",
    environment="tenants",
    migration="006_add_jobs_priority",
    owner="Ada",
    reason="checkout errors",
    operator="Ada",
    started_at=datetime(2026, 11, 26, 14, 0, tzinfo=UTC),
    review_due=datetime(2026, 11, 29, 14, 0, 5, tzinfo=UTC),
    targets=(TargetLine("t01", "rolled back"), TargetLine("t05", "running")),
)


def merged(reported: tuple[int, ...], stopped: tuple[int, ...]) -> Merged:
    steps = pending(Folded(PM, 4, reported, stopped, None, changed=True))
    folded = Folded(replace(PM, steps_pending=steps), 4, reported, stopped, None, changed=True)
    path = Path("ops/postmortems/INC-20261126-01-006-add-jobs-priority.md")
    parts = (Path("ops/postmortems/INC-20261126-01.parts/shard-1-of-4.json"),)
    return Merged("INC-20261126-01", path, True, True, folded, parts)


def test_a_merge_names_the_shards_that_reported_and_what_is_pending() -> None:
    text = merged_text(merged((1, 2, 4), (2,)), str)

    assert text.splitlines() == [
        "INC-20261126-01: 1 part merged; shards 1/4, 2/4, 4/4 reported",
        "postmortem  ops/postmortems/INC-20261126-01-006-add-jobs-priority.md (created)",
        "  t01  rolled back",
        "  t05  running",
        "Review due by 2026-11-29 14:00 UTC.",
        "Pending: shard 3/4 never reported: merge its part",
        "Pending: shard 2/4 did not finish: run it again, then merge its part",
        "Pending: roll back on the targets left: t05",
    ]


def test_the_merges_json_has_stable_keys_and_exit_3_while_pending() -> None:
    shown = merged_json(merged((1, 2, 4), (2,)), str)

    assert (shown["missing"], shown["stopped"], shown["targets_left"]) == ([3], [2], ["t05"])
    assert (shown["complete"], shown["exit_code"]) == (False, 3)
    assert sorted(shown) == sorted(
        [
            "incident",
            "postmortem",
            "created",
            "written",
            "shards",
            "reported",
            "missing",
            "stopped",
            "targets",
            "targets_left",
            "parts",
            "rolled_back_at",
            "review_due",
            "fix_forward",
            "git",
            "steps_pending",
            "complete",
            "warnings",
            "exit_code",
        ]
    )
