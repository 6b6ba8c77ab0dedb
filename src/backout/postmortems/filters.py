"""The questions a lead asks of the postmortems: which ones (by state, owner, severity,
deadline) and in what order (most urgent first). Pure: records and the moment in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from backout.postmortems.collection import Record
from backout.postmortems.model import Postmortem


@dataclass(frozen=True)
class Filters:
    statuses: tuple[str, ...] = ()
    owner: str | None = None
    severities: tuple[str, ...] = ()
    overdue: bool = False
    due_within: timedelta | None = None
    include_done: bool = True

    def accepts(self, r: Record, now: datetime) -> bool:
        pm = r.pm
        if self.statuses and pm.status not in self.statuses:
            return False
        if self.owner and not _owned_by(pm, self.owner):
            return False
        if self.severities and pm.severity.upper() not in self.severities:
            return False
        if self.overdue and not pm.overdue(now):
            return False
        if self.due_within is not None:
            deadline = pm.next_deadline(now)
            if deadline is None or deadline > now + self.due_within:
                return False
        return True


def _owned_by(pm: Postmortem, who: str) -> bool:
    wanted = who.casefold()
    return wanted in pm.owner.casefold() or any(
        wanted in i.owner.casefold() for i in pm.open_items()
    )


def urgency(r: Record, now: datetime) -> tuple[int, float, str]:
    """Sort key, most urgent first: overdue reviews, overdue action items, running deadlines
    (soonest first), then everything else; by id at equal urgency."""
    pm = r.pm
    deadline = pm.next_deadline(now)
    when = deadline.timestamp() if deadline else float("inf")
    if pm.review_overdue(now):
        rank = 0
    elif pm.overdue_items(now):
        rank = 1
    elif deadline is not None:
        rank = 2
    elif pm.status not in ("closed", "not_required"):
        rank = 3
    else:
        rank = 4
    return rank, when, pm.id


def select(records: Sequence[Record], filters: Filters, now: datetime) -> list[Record]:
    """The records ``filters`` accepts, most urgent first."""
    return sorted((r for r in records if filters.accepts(r, now)), key=lambda r: urgency(r, now))
