"""``backout postmortems digest``: what a lead posts each week. Pure: records and a moment in.

Opened, reviewed and closed in the period (from the front matter's ``started_at`` and
``history``), overdue now, due in the next seven days, and the oldest open action items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from backout.postmortems.collection import ActionItem, Record, urgency
from backout.postmortems.deadlines import in_words

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
                h.get("status") == state and _between(_moment(h.get("at")), since, now)
                for h in r.history
            )
        )

    ordered = sorted(records, key=lambda r: urgency(r, now))
    items = [(r, i) for r in records for i in r.open_items() if i.due is not None]
    items.sort(key=lambda pair: (pair[1].due or date.max, pair[0].id))
    return Digest(
        since=since,
        now=now,
        opened=tuple(
            r for r in records if _between(_moment(r.front.get("started_at")), since, now)
        ),
        reviewed=changed_to("reviewed"),
        closed=changed_to("closed"),
        overdue=tuple(r for r in ordered if r.overdue(now)),
        due_soon=tuple(
            r
            for r in ordered
            if not r.overdue(now)
            and (deadline := r.next_deadline(now)) is not None
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
        f"- {r.id}: {i.title} (owner {i.owner or 'nobody'}, due {i.due}, "
        f"{in_words(_day_end(i.due) - d.now) if i.due else 'no date'})"
        for r, i in d.oldest_items
    ] or ["None."]
    return "\n".join(out) + "\n"


def _line(r: Record, now: datetime, with_deadline: bool) -> str:
    text = f"- **{r.id}** {r.title} ({r.severity or '?'}, {r.status}, owner {r.owner or 'nobody'})"
    if with_deadline:
        deadline = r.next_deadline(now)
        if r.review_overdue(now) and r.review_due is not None:
            text += f": review {in_words(r.review_due - now)}"
        elif deadline is not None:
            text += f": next deadline {in_words(deadline - now)}"
        late = r.overdue_items(now)
        if late:
            text += f"; {len(late)} action item(s) overdue"
    if r.branch:
        text += f" [branch {r.branch}]"
    return text


def _between(moment: datetime | None, since: datetime, now: datetime) -> bool:
    return moment is not None and since <= moment <= now


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _day_end(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)
