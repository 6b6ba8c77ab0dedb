"""The postmortem model (pure): action items and the questions about deadlines."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from backout.postmortems.model import ActionItem, Entry, Postmortem
from tests.postmortems.samples import NOW

PM = Postmortem(
    id="INC-20261124-01",
    title="Rollback of 004_x on staging",
    severity="SEV2",
    environment="staging",
    migration="004_x",
    owner="Ada",
    reason="errors",
    operator="Ada",
    started_at=NOW,
)
TODAY = NOW.date()


def test_an_action_item_is_open_until_done_or_moved_and_overdue_after_its_day() -> None:
    item = ActionItem("Fix", "Bo", TODAY - timedelta(days=1))

    assert item.is_open
    assert item.overdue(TODAY)
    assert not item.overdue(TODAY - timedelta(days=1))
    assert not ActionItem("Fix", "Bo", TODAY - timedelta(days=1), status="done").overdue(TODAY)
    assert not ActionItem("Fix", "Bo", None, status="moved", link="https://t/1").is_open
    assert not ActionItem("Fix", "Bo", None).overdue(TODAY)


def test_the_review_deadline_applies_while_the_review_is_pending() -> None:
    late = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)

    assert PM.review_pending
    assert not PM.overdue(NOW)  # no deadline yet
    pending = replace(PM, review_due=late)
    assert pending.review_overdue(NOW)
    assert pending.overdue(NOW)
    assert pending.next_deadline(NOW) == late
    reviewed = replace(PM, review_due=late, status="reviewed")
    assert not reviewed.review_overdue(NOW)
    assert reviewed.next_deadline(NOW) is None


def test_the_next_deadline_is_the_earliest_of_the_review_and_the_open_items() -> None:
    pm = replace(
        PM,
        review_due=NOW + timedelta(days=3),
        action_items=(
            ActionItem("Late", "Bo", date(2026, 11, 20)),
            ActionItem("Soon", "Cy", date(2026, 11, 25)),
            ActionItem("Done", "Di", date(2026, 11, 1), status="done"),
        ),
    )

    assert [i.title for i in pm.open_items()] == ["Late", "Soon"]
    assert [i.title for i in pm.overdue_items(NOW)] == ["Late"]
    assert pm.overdue(NOW)
    assert not pm.review_overdue(NOW)
    assert pm.next_deadline(NOW) == datetime(2026, 11, 20, tzinfo=UTC)


def test_an_entry_is_added_to_a_new_postmortem_the_old_one_unchanged() -> None:
    later = PM.with_entry(NOW, "rolled back")

    assert later.timeline == (Entry(NOW, "rolled back"),)
    assert PM.timeline == ()
