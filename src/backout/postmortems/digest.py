"""``backout postmortems digest``: what a lead posts each week. Pure: records and a moment in.

Opened, reviewed and closed in the period (from the front matter's ``started_at`` and
``history``), overdue now, due in the next seven days, and the oldest open action items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from backout.postmortems.collection import Record
from backout.postmortems.deadlines import in_words
from backout.postmortems.filters import urgency
from backout.postmortems.front_matter import moment
from backout.postmortems.model import ActionItem

WEEK = timedelta(days=7)
OLDEST_ITEMS = 5


@dataclass(frozen=True)
class Digest:
    since: datetime
    now: datetime
    opened: tuple[Record, ...]
    reviewed: tuple[Record, ...]
    closed: tuple[Record, ...]
    overdue: tuple[Record, ...]
    due_soon: tuple[Record, ...]
    oldest_items: tuple[tuple[Record, ActionItem], ...]


def digest(records: Sequence[Record], since: datetime, now: datetime) -> Digest:
    def changed_to(state: str) -> tuple[Record, ...]:
        return tuple(
            r
            for r in records
            if any(
                h.get("status") == state and _between(moment(h.get("at")), since, now)
                for h in r.pm.history
            )
        )

    ordered = sorted(records, key=lambda r: urgency(r, now))
    items = [(r, i) for r in records for i in r.pm.open_items() if i.due is not None]
    items.sort(key=lambda pair: (pair[1].due or date.max, pair[0].pm.id))
    return Digest(
        since=since,
        now=now,
        opened=tuple(r for r in records if _between(r.pm.started_at, since, now)),
        reviewed=changed_to("reviewed"),
        closed=changed_to("closed"),
        overdue=tuple(r for r in ordered if r.pm.overdue(now)),
        due_soon=tuple(
            r
            for r in ordered
            if not r.pm.overdue(now)
            and (deadline := r.pm.next_deadline(now)) is not None
            and deadline <= now + WEEK
        ),
        oldest_items=tuple(items[:OLDEST_ITEMS]),
    )


def markdown(d: Digest) -> str:
    """The digest as Markdown, ready to paste into a chat or a wiki."""
    out = [
        f"# Postmortems: {d.since:%Y-%m-%d} to {d.now:%Y-%m-%d}",
        "",
        f"Opened {len(d.opened)}, reviewed {len(d.reviewed)}, closed {len(d.closed)}; "
        f"{len(d.overdue)} overdue now, {len(d.due_soon)} due in the next 7 days.",
    ]
    sections = (
        ("Overdue now", d.overdue, True),
        ("Due in the next 7 days", d.due_soon, True),
        ("Opened", d.opened, False),
        ("Reviewed", d.reviewed, False),
        ("Closed", d.closed, False),
    )
    for title, records, with_deadline in sections:
        out += ["", f"## {title}", ""]
        out += [_line(r, d.now, with_deadline) for r in records] or ["None."]
    out += ["", "## Oldest open action items", ""]
    out += [
        f"- {r.pm.id}: {i.title} (owner {i.owner or 'nobody'}, due {i.due}, "
        f"{in_words(_day_end(i.due) - d.now) if i.due else 'no date'})"
        for r, i in d.oldest_items
    ] or ["None."]
    return "\n".join(out) + "\n"


def _line(r: Record, now: datetime, with_deadline: bool) -> str:
    pm = r.pm
    owner = pm.owner or "nobody"
    text = f"- **{pm.id}** {pm.title} ({pm.severity or '?'}, {pm.status}, owner {owner})"
    if with_deadline:
        deadline = pm.next_deadline(now)
        if pm.review_overdue(now) and pm.review_due is not None:
            text += f": review {in_words(pm.review_due - now)}"
        elif deadline is not None:
            text += f": next deadline {in_words(deadline - now)}"
        late = pm.overdue_items(now)
        if late:
            text += f"; {len(late)} action item(s) overdue"
    if r.branch:
        text += f" [branch {r.branch}]"
    return text


def _between(moment: datetime | None, since: datetime, now: datetime) -> bool:
    return moment is not None and since <= moment <= now


def _day_end(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)
