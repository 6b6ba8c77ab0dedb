"""``backout postmortems calendar``: review deadlines and action items as an iCalendar file.

One event per open review deadline (a 30-minute slot ending at the deadline) and per open
action item (an all-day event on its due date), each with an alarm a day before. UIDs are
derived from the incident id and the item, so importing the file again updates the events
instead of duplicating them. Built with the ``icalendar`` library; pure apart from the clock
passed in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from backout import __version__
from backout.postmortems.collection import Record

if TYPE_CHECKING:
    import icalendar

PRODID = f"-//backout//postmortems {__version__}//EN"
UID_DOMAIN = "backout.postmortems"


def calendar(records: Sequence[Record], now: datetime) -> bytes:
    """The ``.ics`` file's bytes."""
    import icalendar  # imported when a calendar is made: it costs every command 50 ms

    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", "Postmortem deadlines")
    stamp = now.astimezone(UTC).replace(microsecond=0)
    for r in records:
        pm = r.pm
        if pm.review_pending and pm.review_due is not None:
            event = _event(f"{pm.id}-review", f"Postmortem review due: {pm.id} {pm.title}", stamp)
            due = pm.review_due.astimezone(UTC)
            event.add("dtstart", due - timedelta(minutes=30))
            event.add("dtend", due)
            event.add("description", _description(r, f"Review due {due:%Y-%m-%d %H:%M} UTC."))
            cal.add_component(_with_alarm(event, f"Postmortem review of {pm.id} due tomorrow"))
        for number, item in enumerate(pm.action_items, start=1):
            if not item.is_open or item.due is None:
                continue
            key = hashlib.sha256(item.title.encode()).hexdigest()[:8]
            event = _event(f"{pm.id}-item-{number}-{key}", f"Action item due: {item.title}", stamp)
            event.add("dtstart", item.due)
            event.add("dtend", item.due + timedelta(days=1))
            event.add("description", _description(r, f"Owner: {item.owner or 'nobody'}."))
            cal.add_component(_with_alarm(event, f"Action item of {pm.id} due tomorrow"))
    return bytes(cal.to_ical())


def _event(uid: str, summary: str, stamp: datetime) -> icalendar.Event:
    import icalendar

    event = icalendar.Event()
    event.add("uid", f"{uid}@{UID_DOMAIN}")
    event.add("summary", summary)
    event.add("dtstamp", stamp)
    return event


def _description(r: Record, first: str) -> str:
    pm = r.pm
    where = f" (branch {r.branch})" if r.branch else ""
    return (
        f"{first}\nIncident {pm.id}, {pm.severity or 'no severity'}, status {pm.status}, "
        f"owner {pm.owner or 'nobody'}.\nFile: {r.path.name}{where}"
    )


def _with_alarm(event: icalendar.Event, text: str) -> icalendar.Event:
    import icalendar

    alarm = icalendar.Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", text)
    alarm.add("trigger", timedelta(days=-1))
    event.add_component(alarm)
    return event
