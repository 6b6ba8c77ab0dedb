"""``backout postmortems calendar``: an iCalendar file of the review deadlines and items."""

from __future__ import annotations

from pathlib import Path

import icalendar

from tests.runner import run


def test_the_calendar_parses_back_with_stable_uids_and_alarms(project: Path) -> None:
    first = run("postmortems", "calendar", "-o", "a.ics")
    second = run("postmortems", "calendar", "-o", "b.ics")

    assert first.exit_code == second.exit_code == 0
    a = icalendar.Calendar.from_ical((project / "a.ics").read_bytes())
    b = icalendar.Calendar.from_ical((project / "b.ics").read_bytes())
    events = a.walk("VEVENT")
    assert len(events) == 2  # the two reviews still pending; the reviewed one has no deadline
    assert sorted(str(e["uid"]) for e in events) == sorted(str(e["uid"]) for e in b.walk("VEVENT"))
    assert all(e.walk("VALARM") for e in events)
    assert {str(e["uid"]) for e in events} == {
        "INC-20261120-01-review@backout.postmortems",
        "INC-20261123-01-review@backout.postmortems",
    }
