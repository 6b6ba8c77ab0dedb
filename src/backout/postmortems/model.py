"""The postmortem of an incident: its fields, action items and timeline, and the questions about
its deadlines. Pure: no files, no clock (every question takes the moment it is asked at).

One model serves the writer (``emergency`` fills it in step by step) and the reader (a lead's
``postmortems`` commands read it back from the front matter); :mod:`.front_matter` maps it to
and from the YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from backout.postmortems.deadlines import ClockPolicy

STATES = ("draft", "in_review", "reviewed", "published", "closed", "not_required")
REVIEW_PENDING = ("draft", "in_review")
"""The states in which the review deadline applies."""
ITEM_DONE = ("done", "moved")
"""Action item states that no longer need anything (``moved`` means to a tracker link)."""


@dataclass(frozen=True)
class Entry:
    """One line of the timeline: when (UTC) and what happened."""

    at: datetime
    text: str


@dataclass(frozen=True)
class ActionItem:
    """Something to do after the incident, by an owner, by a day."""

    title: str
    owner: str
    due: date | None
    """``None`` only in a file someone wrote without a date (``postmortems check`` reports it)."""
    status: str = "open"
    link: str | None = None
    """Where the item went when it was ``moved`` to a tracker."""

    @property
    def is_open(self) -> bool:
        return self.status not in ITEM_DONE

    def overdue(self, today: date) -> bool:
        return self.is_open and self.due is not None and self.due < today


@dataclass(frozen=True)
class TargetLine:
    """One database of a fleet incident, and what the rollback did there."""

    name: str
    outcome: str
    """``rolled back``, ``rolled back earlier``, ``skipped``, ``failed``, ``not started``,
    ``pending`` (not reached yet)."""
    detail: str = ""
    """Why it was skipped or failed; the schema check of one rolled back."""
    audit_event: int | None = None
    backup: str | None = None
    """Its backup folder (one subfolder of the incident's per target)."""
    seconds: float | None = None


@dataclass(frozen=True)
class Postmortem:
    """What a postmortem records; the file's front matter holds every field except the three
    only the body shows (``rollback_sql``, ``rollback_sha256``, ``introduced_by``)."""

    id: str
    title: str
    severity: str
    environment: str
    migration: str
    owner: str
    reason: str
    operator: str
    """Who opened the incident (the ``by`` of the first ``history`` entry)."""
    started_at: datetime | None
    status: str = "draft"
    rolled_back_at: datetime | None = None
    review_due: datetime | None = None
    clock: ClockPolicy = field(default_factory=ClockPolicy)
    """How ``review_due`` was counted; stored so the deadline reads the same everywhere."""
    approved_by: str | None = None
    fix_forward: str | None = None
    backup: str | None = None
    backup_waiver: str | None = None
    audit_event: int | None = None
    rollback_sql: str = ""
    rollback_sha256: str | None = None
    introduced_by: str | None = None
    """The commit that added the migration, as context (blameless)."""
    rehearsal: str | None = None
    """Whether the rollback passed rehearsal on a scratch database before it ran."""
    schema_check: str | None = None
    """Whether the schema came back to what it was before the migration was applied."""
    steps_pending: tuple[str, ...] = ()
    """The emergency's steps not yet completed, in order; empty once it finished."""
    timeline: tuple[Entry, ...] = ()
    targets: tuple[TargetLine, ...] = ()
    """A fleet incident's databases, each with its outcome; empty for one database."""
    action_items: tuple[ActionItem, ...] = ()
    history: tuple[Mapping[str, Any], ...] = ()
    """The state changes (status, at, by, reason), as written; empty until the file exists."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Front matter keys the model does not know, kept as they are."""

    def with_entry(self, at: datetime, text: str) -> Postmortem:
        return replace(self, timeline=(*self.timeline, Entry(at, text)))

    def with_target(self, line: TargetLine) -> Postmortem:
        """``line`` in place of the target's earlier line (or added, last)."""
        lines = [t for t in self.targets if t.name != line.name]
        index = next((i for i, t in enumerate(self.targets) if t.name == line.name), None)
        lines.insert(len(lines) if index is None else index, line)
        return replace(self, targets=tuple(lines))

    @property
    def review_pending(self) -> bool:
        return self.status in REVIEW_PENDING

    def review_overdue(self, now: datetime) -> bool:
        return self.review_pending and self.review_due is not None and self.review_due < now

    def open_items(self) -> tuple[ActionItem, ...]:
        return tuple(i for i in self.action_items if i.is_open)

    def overdue_items(self, now: datetime) -> tuple[ActionItem, ...]:
        today = now.astimezone(UTC).date()
        return tuple(i for i in self.action_items if i.overdue(today))

    def overdue(self, now: datetime) -> bool:
        """The review or an open action item is past its deadline."""
        return self.review_overdue(now) or bool(self.overdue_items(now))

    def next_deadline(self, now: datetime) -> datetime | None:
        """The earliest deadline still running: the review's, or an open action item's."""
        moments = [self.review_due] if self.review_pending and self.review_due else []
        moments += [
            datetime.combine(i.due, datetime.min.time(), tzinfo=UTC)
            for i in self.open_items()
            if i.due is not None
        ]
        return min(moments, default=None)
