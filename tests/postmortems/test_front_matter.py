"""The front matter (pure): the YAML text split and joined, and the model written to it and
read back from it."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from backout.postmortems.deadlines import ClockPolicy
from backout.postmortems.front_matter import (
    dump,
    from_front_matter,
    join_front_matter,
    split_front_matter,
    to_front_matter,
)
from backout.postmortems.model import ActionItem, Postmortem, TargetLine
from tests.postmortems.samples import as_read_back, full_postmortem

OPENING = {"status": "draft", "at": "2026-11-24T12:00:00Z", "by": "Bo"}


def written_then_read(pm: Postmortem) -> tuple[Postmortem, tuple[tuple[str, str], ...]]:
    front, body = split_front_matter(join_front_matter(to_front_matter(pm), "body\n"))
    assert front is not None
    assert body == "body\n"
    return from_front_matter(front)


def test_a_postmortem_written_then_read_back_has_the_same_fields_and_action_items() -> None:
    pm = full_postmortem()

    back, problems = written_then_read(pm)

    assert problems == ()
    assert back == as_read_back(pm)
    assert back.action_items == pm.action_items
    assert back.timeline == pm.timeline


def test_a_new_postmortem_reads_back_with_its_opening_and_no_times_yet() -> None:
    opened = replace(
        full_postmortem(), rolled_back_at=None, review_due=None, action_items=(), extra={}
    )

    back, _ = written_then_read(opened)

    assert back == as_read_back(opened)
    assert back.rolled_back_at is None


def test_the_writer_keeps_its_keys_in_order_and_writes_a_link_only_when_there_is_one() -> None:
    front = to_front_matter(full_postmortem())

    assert list(front) == [
        *("id", "title", "status", "severity", "environment", "migration", "owner", "reason"),
        *("started_at", "rolled_back_at", "review_due", "review_window_hours", "clock"),
        *("time_zone", "approved_by", "fix_forward", "backup", "backup_waiver", "audit_event"),
        *("rehearsal", "schema_check", "action_items", "history", "timeline", "team"),
    ]
    assert front["action_items"][0] == {
        "title": "Write, review and apply 005_fix.sql",
        "owner": "Ada",
        "due": "2026-12-09",
        "status": "open",
    }
    assert front["action_items"][1]["link"] == "https://tracker/T-1"
    assert front["started_at"] == "2026-11-24T12:00:00Z"
    assert front["timeline"][1] == {"at": "2026-11-24T12:00:00.000250Z", "text": "rolled back"}
    assert front["history"] == [OPENING]


def test_a_history_read_back_is_written_back_as_it_was() -> None:
    history = (OPENING, {"status": "in_review", "at": "2026-11-25T09:00:00Z", "by": "Lead"})

    back, _ = written_then_read(replace(full_postmortem(), history=history))

    assert back.history == history
    assert back.operator == "Bo"


def test_a_reason_with_a_newline_and_a_key_stays_text() -> None:
    text = dump(to_front_matter(full_postmortem()))

    back, _ = from_front_matter(split_front_matter(f"---\n{text}---\n")[0] or {})

    assert back.reason == "the events API returned 500s\nreview_due: never"
    assert back.review_due == full_postmortem().review_due


def test_values_a_person_broke_read_as_defaults_and_unknown_keys_are_kept() -> None:
    front: dict[str, Any] = {
        "id": "INC-20261124-01",
        "clock": "lunar",
        "time_zone": "Mars/Base",
        "review_window_hours": "soon",
        "started_at": "yesterday",
        "audit_event": "12",
        "timeline": [{"at": "garbage", "text": "lost"}, "a line", {"at": "2026-11-24T12:00:00Z"}],
        "action_items": [{"title": "Fix", "due": "2026-12-01T10:00:00Z", "link": ""}],
        "team": "payments",
    }

    pm, problems = from_front_matter(front)

    assert problems == ()
    assert pm.clock == ClockPolicy()
    assert (pm.started_at, pm.audit_event, pm.timeline) == (None, None, ())
    assert (pm.status, pm.title, pm.operator, pm.backup) == ("draft", "", "", None)
    assert pm.action_items == (ActionItem("Fix", "", date(2026, 12, 1)),)
    assert pm.extra == {"team": "payments"}


def test_a_fleet_incident_s_targets_are_written_and_read_back_in_order() -> None:
    lines = (
        TargetLine("t01", "rolled back", "schema check: ok", 7, ".backout/backups/INC/t01", 0.4),
        TargetLine("t02", "failed", "could not get its table locks"),
        TargetLine("t03", "skipped", "not applied"),
    )
    pm = replace(full_postmortem(), targets=lines)

    back, problems = written_then_read(pm)

    assert problems == ()
    assert back.targets == lines
    assert to_front_matter(pm)["targets"][1] == {
        "name": "t02",
        "outcome": "failed",
        "detail": "could not get its table locks",
    }
    assert "targets" not in to_front_matter(full_postmortem())  # one database: no such key


def test_a_target_s_line_is_replaced_in_its_place() -> None:
    pm = replace(
        full_postmortem(), targets=(TargetLine("t01", "pending"), TargetLine("t02", "pending"))
    )

    pm = pm.with_target(TargetLine("t01", "rolled back")).with_target(TargetLine("t09", "failed"))

    assert [(t.name, t.outcome) for t in pm.targets] == [
        ("t01", "rolled back"),
        ("t02", "pending"),
        ("t09", "failed"),
    ]
