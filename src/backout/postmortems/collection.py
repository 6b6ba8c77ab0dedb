"""The postmortems of a project, as a lead tracks them: found, read, filtered and ordered.

A postmortem is any ``*.md`` file in the postmortems folder whose YAML front matter has an
``id``; other Markdown files there (a README) are not postmortems. With ``all_branches``, the
postmortems that exist only on local or remote-tracking branches (the ``incident/<id>``
branches ``emergency`` makes) are read too, through git, and marked with their branch.

A file whose front matter is broken becomes a :class:`Broken` entry with its path and line; it
never stops the reading of the others. Reading is pure apart from the files and git; every
question about time takes the moment it is asked at.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from backout import git
from backout.errors import RefusedError, UsageError
from backout.postmortems.document import (
    FrontMatterError,
    join_front_matter,
    split_front_matter,
    write_atomically,
)

STATES = ("draft", "in_review", "reviewed", "published", "closed", "not_required")
REVIEW_PENDING = ("draft", "in_review")
"""The states in which the review deadline applies."""
ITEM_DONE = ("done", "moved")
"""Action item states that no longer need anything (``moved`` means to a tracker link)."""


@dataclass(frozen=True)
class ActionItem:
    title: str
    owner: str
    due: date | None
    status: str = "open"
    link: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status not in ITEM_DONE

    def overdue(self, today: date) -> bool:
        return self.is_open and self.due is not None and self.due < today


@dataclass(frozen=True)
class Record:
    """One postmortem as its front matter says."""

    path: Path
    """Where it is: the file, or for one read from a branch, its path in the repository."""
    branch: str | None
    """``None`` for a file in the working tree; else the branch it was read from."""
    front: Mapping[str, Any]
    body: str
    id: str
    title: str
    status: str
    severity: str
    owner: str
    review_due: datetime | None
    action_items: tuple[ActionItem, ...] = ()
    history: tuple[Mapping[str, Any], ...] = ()
    body_line: int = 1
    """The file line where the body starts."""
    problems: tuple[tuple[int, str], ...] = field(default=(), compare=False)
    """``(line, message)`` for values that could not be read (a bad date, an unknown state)."""

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


@dataclass(frozen=True)
class Broken:
    """A file that looks like a postmortem but cannot be read."""

    path: Path
    branch: str | None
    line: int
    message: str


@dataclass(frozen=True)
class Collection:
    records: tuple[Record, ...]
    broken: tuple[Broken, ...] = ()


def load(folder: Path, *, all_branches: bool = False) -> Collection:
    """The postmortems in ``folder`` and, with ``all_branches``, those only on branches."""
    records: list[Record] = []
    broken: list[Broken] = []
    for path in sorted(folder.glob("*.md")) if folder.is_dir() else ():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            broken.append(Broken(path, None, 1, f"cannot be read: {exc}"))
            continue
        _add(parse(text, path, None), records, broken)
    if all_branches:
        seen = {r.id for r in records}
        for found in git.files_in_folder_on_branches(folder, suffix=".md"):
            parsed = parse(found.text, found.path, found.branch)
            if isinstance(parsed, Record):
                if parsed.id in seen:
                    continue
                seen.add(parsed.id)
            _add(parsed, records, broken)
    return Collection(tuple(records), tuple(broken))


def _add(parsed: Record | Broken | None, records: list[Record], broken: list[Broken]) -> None:
    if isinstance(parsed, Record):
        records.append(parsed)
    elif isinstance(parsed, Broken):
        broken.append(parsed)


def parse(text: str, path: Path, branch: str | None) -> Record | Broken | None:
    """One file's text: a :class:`Record`, a :class:`Broken` one, or ``None`` when it is not a
    postmortem (no front matter, or no ``id`` in it)."""
    try:
        front, body = split_front_matter(text)
    except FrontMatterError as exc:
        return Broken(path, branch, exc.line, str(exc))
    if not front or not front.get("id"):
        return None
    problems: list[tuple[int, str]] = []
    line_of = _key_lines(text)

    def problem(key: str, message: str) -> None:
        problems.append((line_of.get(key, 1), message))

    status = str(front.get("status") or "draft")
    if status not in STATES:
        problem("status", f"unknown status {status!r}: one of {', '.join(STATES)}")
    review_due = _moment(front.get("review_due"))
    if front.get("review_due") and review_due is None:
        problem("review_due", f"review_due {front['review_due']!r} is not a UTC ISO 8601 time")
    items = []
    for number, raw in enumerate(front.get("action_items") or (), start=1):
        if not isinstance(raw, Mapping):
            problem("action_items", f"action item {number} is not a mapping")
            continue
        due = _day(raw.get("due"))
        if raw.get("due") and due is None:
            problem("action_items", f"action item {number}: due {raw['due']!r} is not a date")
        items.append(
            ActionItem(
                title=str(raw.get("title") or ""),
                owner=str(raw.get("owner") or ""),
                due=due,
                status=str(raw.get("status") or "open"),
                link=str(raw["link"]) if raw.get("link") else None,
            )
        )
    history = tuple(h for h in front.get("history") or () if isinstance(h, Mapping))
    return Record(
        path=path,
        branch=branch,
        front=front,
        body=body,
        id=str(front["id"]),
        title=str(front.get("title") or ""),
        status=status,
        severity=str(front.get("severity") or ""),
        owner=str(front.get("owner") or ""),
        review_due=review_due,
        action_items=tuple(items),
        history=history,
        body_line=text[: len(text) - len(body)].count("\n") + 1,
        problems=tuple(problems),
    )


def _key_lines(text: str) -> dict[str, int]:
    """The line of each top-level key of the front matter (for findings)."""
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines()[1:], start=2):
        if line.startswith("---"):
            break
        if line and not line[0].isspace() and ":" in line and not line.startswith("#"):
            lines.setdefault(line.split(":", 1)[0].strip(), number)
    return lines


def _moment(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _day(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        moment = _moment(value)
        return moment.date() if moment else None


# -- questions a lead asks ----------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    statuses: tuple[str, ...] = ()
    owner: str | None = None
    severities: tuple[str, ...] = ()
    overdue: bool = False
    due_within: timedelta | None = None
    include_done: bool = True

    def accepts(self, r: Record, now: datetime) -> bool:
        if self.statuses and r.status not in self.statuses:
            return False
        if self.owner and not _owned_by(r, self.owner):
            return False
        if self.severities and r.severity.upper() not in self.severities:
            return False
        if self.overdue and not r.overdue(now):
            return False
        if self.due_within is not None:
            deadline = r.next_deadline(now)
            if deadline is None or deadline > now + self.due_within:
                return False
        return True


def _owned_by(r: Record, who: str) -> bool:
    wanted = who.casefold()
    return wanted in r.owner.casefold() or any(wanted in i.owner.casefold() for i in r.open_items())


def urgency(r: Record, now: datetime) -> tuple[int, float, str]:
    """Sort key, most urgent first: overdue reviews, overdue action items, running deadlines
    (soonest first), then everything else; by id at equal urgency."""
    deadline = r.next_deadline(now)
    when = deadline.timestamp() if deadline else float("inf")
    if r.review_overdue(now):
        rank = 0
    elif r.overdue_items(now):
        rank = 1
    elif deadline is not None:
        rank = 2
    elif r.status not in ("closed", "not_required"):
        rank = 3
    else:
        rank = 4
    return rank, when, r.id


def select(records: Sequence[Record], filters: Filters, now: datetime) -> list[Record]:
    """The records ``filters`` accepts, most urgent first."""
    return sorted((r for r in records if filters.accepts(r, now)), key=lambda r: urgency(r, now))


# -- changing one ------------------------------------------------------------------------------


def find(collection: Collection, incident_id: str) -> Record:
    """The postmortem with ``incident_id`` (case-insensitive), or a usage error that suggests."""
    wanted = incident_id.strip().upper()
    for record in collection.records:
        if record.id.upper() == wanted:
            return record
    known = sorted(r.id for r in collection.records)
    close = difflib.get_close_matches(wanted, known, n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "`backout postmortems list` lists them"
    raise UsageError(f"no postmortem with id {incident_id!r}", hint=hint)


def rewrite(record: Record, front: Mapping[str, Any]) -> None:
    """Write ``front`` over the record's front matter, body unchanged, atomically."""
    if record.branch is not None:
        raise RefusedError(
            f"{record.id} exists only on the branch {record.branch}",
            hint=f"switch to it (git switch {record.branch}) to change it",
        )
    write_atomically(record.path, join_front_matter(dict(front), record.body))
