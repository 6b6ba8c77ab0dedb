"""Review deadlines and action-item due dates. Pure: every function takes the moment it needs.

The clock policy is explicit and stored in each postmortem's front matter, so a deadline means
the same thing on every machine and after a configuration change:

- ``wall`` (the default): the review is due ``hours`` after the rollback, nights and weekends
  included;
- ``business``: only hours on weekdays (Monday to Friday, midnight to midnight) in the policy's
  time zone count; Saturdays and Sundays are skipped. Local midnights are found in the time
  zone, so a daylight-saving change is an ordinary 23- or 25-hour day.

Times are UTC in and out; the time zone only decides which hours count.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from backout.config import ClockPolicy as ClockPolicy  # the policy is a setting; re-exported
from backout.config import zone


def review_due(start: datetime, policy: ClockPolicy) -> datetime:
    """When the review is due: ``policy.hours`` after ``start``, counted as the policy says."""
    start = start.astimezone(UTC)
    if policy.clock == "wall":
        return start + timedelta(hours=policy.hours)
    return _add_weekday_hours(start, timedelta(hours=policy.hours), zone(policy.time_zone))


def _add_weekday_hours(start: datetime, amount: timedelta, tz: ZoneInfo) -> datetime:
    current, remaining = start, amount
    while True:
        local = current.astimezone(tz)
        next_midnight = _local_midnight(local.date() + timedelta(days=1), tz)
        if local.weekday() >= 5:  # Saturday or Sunday: nothing counts until Monday 00:00
            current = next_midnight
            continue
        available = next_midnight - current
        if remaining <= available:
            return current + remaining
        remaining -= available
        current = next_midnight


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def action_item_due(start: datetime, severity: str, days: Mapping[str, int]) -> date:
    """The default due date of an action item opened at ``start`` (a UTC date)."""
    return (start.astimezone(UTC) + timedelta(days=days.get(severity, days.get("SEV2", 30)))).date()


def in_words(delta: timedelta) -> str:
    """``in 5 h`` / ``overdue by 2 d`` for the time left until a deadline."""
    seconds = delta.total_seconds()
    size = abs(seconds)
    if size < 3600:
        amount = f"{max(1, round(size / 60))} min"
    elif size < 96 * 3600:  # a 72-hour review window reads as hours
        amount = f"{round(size / 3600)} h"
    else:
        amount = f"{round(size / 86400)} d"
    return f"in {amount}" if seconds >= 0 else f"overdue by {amount}"
