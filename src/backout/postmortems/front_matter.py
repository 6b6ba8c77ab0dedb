"""The front matter of a postmortem file: the YAML between the two ``---`` lines, and how the
model's fields map to it, both ways. Pure: text and mappings in, text and mappings out.

The front matter is written by PyYAML (``safe_dump``), never by string formatting, so text a
person typed (a reason holding a newline and ``review_due: ...``) stays a string and cannot
break it. It is read with times and dates left as the strings that were written, so a front
matter read and written back keeps every value as it was. Reading a postmortem never fails on
a bad value: the value is left out and named in the problems returned with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import yaml

from backout.postmortems.deadlines import ClockPolicy
from backout.postmortems.model import STATES, ActionItem, Entry, Postmortem, TargetLine

Problem = tuple[str, str]
"""``(key, message)``: a value of the front matter that could not be read, and why."""


class FrontMatterError(ValueError):
    """Front matter that is not valid YAML mapping; ``line`` is the file's line (1-based)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when PyYAML was built with it (ten times faster on a folder of postmortems)."""


class _StringTimes(_SafeLoader):  # type: ignore[misc,valid-type]
    """PyYAML's safe loader, except that times and dates stay the strings that were written:
    a front matter read and written back keeps every value as it was."""


_StringTimes.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# -- the text -----------------------------------------------------------------------------------


def split_front_matter(text: str) -> tuple[dict[str, Any] | None, str]:
    """``(front matter, body)``; ``(None, text)`` when the text opens with no front matter.

    Raises :class:`FrontMatterError` (with the file's line) for front matter that is not a
    YAML mapping or is never closed.
    """
    if not text.startswith("---\n"):
        return None, text
    end = text.find("\n---", 3)
    if end < 0:
        raise FrontMatterError("the front matter opened on line 1 is never closed by ---", 1)
    try:
        data = yaml.load(text[4 : end + 1], Loader=_StringTimes)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FrontMatterError(f"front matter is not valid YAML: {problem}", line) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrontMatterError("front matter is not a mapping of keys to values", 2)
    after = text.find("\n", end + 1)
    body = "" if after < 0 else text[after + 1 :]
    return data, body


def read_front_matter(text: str) -> dict[str, Any]:
    """The front matter of a postmortem file's text; ``{}`` when there is none or it is broken."""
    try:
        front, _ = split_front_matter(text)
    except FrontMatterError:
        return {}
    return front or {}


def join_front_matter(front: Mapping[str, Any], body: str) -> str:
    """The file's text from its front matter (keys in their order, unknown ones kept) and body."""
    return f"---\n{dump(front)}---\n{body}"


def dump(front: Mapping[str, Any]) -> str:
    """The YAML of ``front``, keys in their order, each on its own line."""
    return yaml.safe_dump(
        dict(front), sort_keys=False, allow_unicode=True, default_flow_style=False
    )


def key_lines(text: str) -> dict[str, int]:
    """The file line of each top-level key of the front matter (for findings)."""
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines()[1:], start=2):
        if line.startswith("---"):
            break
        if line and not line[0].isspace() and ":" in line and not line.startswith("#"):
            lines.setdefault(line.split(":", 1)[0].strip(), number)
    return lines


# -- the model to the front matter --------------------------------------------------------------


def to_front_matter(pm: Postmortem) -> dict[str, Any]:
    """The front matter, with stable keys, times in UTC ISO 8601."""
    return {
        "id": pm.id,
        "title": pm.title,
        "status": pm.status,
        "severity": pm.severity,
        "environment": pm.environment,
        "migration": pm.migration,
        "owner": pm.owner,
        "reason": pm.reason,
        "started_at": _iso(pm.started_at),
        "rolled_back_at": _iso(pm.rolled_back_at),
        "review_due": _iso(pm.review_due),
        **pm.clock.as_front_matter(),
        "approved_by": pm.approved_by,
        "fix_forward": pm.fix_forward,
        "backup": pm.backup,
        "backup_waiver": pm.backup_waiver,
        "audit_event": pm.audit_event,
        "rehearsal": pm.rehearsal,
        "schema_check": pm.schema_check,
        # Only while the emergency is unfinished: a finished incident's file has no such key.
        **({"steps_pending": list(pm.steps_pending)} if pm.steps_pending else {}),
        "action_items": [_item_front(a) for a in pm.action_items],
        # A new postmortem's history is its opening: a draft, by the operator, when it started.
        "history": [dict(h) for h in pm.history]
        or [{"status": "draft", "at": _iso(pm.started_at), "by": pm.operator}],
        "timeline": [{"at": _iso(e.at), "text": e.text} for e in pm.timeline],
        # A fleet's incident only: every target and its outcome.
        **({"targets": [_target_front(t) for t in pm.targets]} if pm.targets else {}),
        **pm.extra,
    }


KNOWN_KEYS = (
    *("id", "title", "status", "severity", "environment", "migration", "owner", "reason"),
    *("started_at", "rolled_back_at", "review_due", "review_window_hours", "clock", "time_zone"),
    *("approved_by", "fix_forward", "backup", "backup_waiver", "audit_event", "rehearsal"),
    *("schema_check", "steps_pending", "action_items", "history", "timeline", "targets"),
)
"""The keys :func:`to_front_matter` writes from the model's fields; any other is ``extra``."""


def _target_front(line: TargetLine) -> dict[str, Any]:
    found = {"audit_event": line.audit_event, "backup": line.backup, "seconds": line.seconds}
    return {
        "name": line.name,
        "outcome": line.outcome,
        **({"detail": line.detail} if line.detail else {}),
        **{k: v for k, v in found.items() if v is not None},
    }


def targets_from(front: Mapping[str, Any]) -> tuple[TargetLine, ...]:
    """A fleet incident's targets; an entry without a name is left out."""
    raw = front.get("targets")
    return tuple(
        TargetLine(
            name=str(item["name"]),
            outcome=_text(item.get("outcome")),
            detail=_text(item.get("detail")),
            audit_event=_integer(item.get("audit_event")),
            backup=_optional(item.get("backup")),
            seconds=_seconds(item.get("seconds")),
        )
        for item in (raw if isinstance(raw, list) else ())
        if isinstance(item, Mapping) and item.get("name")
    )


def _seconds(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _item_front(item: ActionItem) -> dict[str, Any]:
    due = item.due.isoformat() if item.due is not None else None
    link = {"link": item.link} if item.link else {}
    return {"title": item.title, "owner": item.owner, "due": due, "status": item.status, **link}


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


# -- the front matter to the model --------------------------------------------------------------


def from_front_matter(front: Mapping[str, Any]) -> tuple[Postmortem, tuple[Problem, ...]]:
    """The postmortem ``front`` records, and the values that could not be read.

    A missing text is ``""``, a missing or unreadable time or date ``None``; a clock policy that
    is not one is the default policy.
    """
    problems: list[Problem] = []  # filled in the order the fields are read (status first)
    history = tuple(h for h in front.get("history") or () if isinstance(h, Mapping))
    pm = Postmortem(
        id=_text(front.get("id")),
        title=_text(front.get("title")),
        severity=_text(front.get("severity")),
        environment=_text(front.get("environment")),
        migration=_text(front.get("migration")),
        owner=_text(front.get("owner")),
        reason=_text(front.get("reason")),
        operator=_text(history[0].get("by")) if history else "",
        started_at=moment(front.get("started_at")),
        status=_status(front, problems),
        rolled_back_at=moment(front.get("rolled_back_at")),
        review_due=_review_due(front, problems),
        clock=_clock(front),
        approved_by=_optional(front.get("approved_by")),
        fix_forward=_optional(front.get("fix_forward")),
        backup=_optional(front.get("backup")),
        backup_waiver=_optional(front.get("backup_waiver")),
        audit_event=_integer(front.get("audit_event")),
        rehearsal=_optional(front.get("rehearsal")),
        schema_check=_optional(front.get("schema_check")),
        steps_pending=_texts(front.get("steps_pending")),
        timeline=timeline_from(front),
        targets=targets_from(front),
        action_items=_action_items(front, problems),
        history=history,
        extra={k: v for k, v in front.items() if k not in KNOWN_KEYS},
    )
    return pm, tuple(problems)


def _texts(value: object) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def timeline_from(front: Mapping[str, Any]) -> tuple[Entry, ...]:
    """The timeline the front matter records; an entry without a readable time is left out."""
    entries = []
    raw = front.get("timeline")
    for item in raw if isinstance(raw, list) else ():
        if isinstance(item, Mapping) and item.get("at") and item.get("text"):
            at = moment(item["at"])
            if at is not None:
                entries.append(Entry(at, str(item["text"])))
    return tuple(entries)


def _status(front: Mapping[str, Any], problems: list[Problem]) -> str:
    status = str(front.get("status") or "draft")
    if status not in STATES:
        problems.append(("status", f"unknown status {status!r}: one of {', '.join(STATES)}"))
    return status


def _review_due(front: Mapping[str, Any], problems: list[Problem]) -> datetime | None:
    due = moment(front.get("review_due"))
    if front.get("review_due") and due is None:
        problems.append(
            ("review_due", f"review_due {front['review_due']!r} is not a UTC ISO 8601 time")
        )
    return due


def _action_items(front: Mapping[str, Any], problems: list[Problem]) -> tuple[ActionItem, ...]:
    items = []
    for number, raw in enumerate(front.get("action_items") or (), start=1):
        if not isinstance(raw, Mapping):
            problems.append(("action_items", f"action item {number} is not a mapping"))
            continue
        due = day(raw.get("due"))
        if raw.get("due") and due is None:
            message = f"action item {number}: due {raw['due']!r} is not a date"
            problems.append(("action_items", message))
        items.append(
            ActionItem(
                title=_text(raw.get("title")),
                owner=_text(raw.get("owner")),
                due=due,
                status=str(raw.get("status") or "open"),
                link=str(raw["link"]) if raw.get("link") else None,
            )
        )
    return tuple(items)


def _clock(front: Mapping[str, Any]) -> ClockPolicy:
    default = ClockPolicy()
    try:
        return ClockPolicy(
            hours=int(front.get("review_window_hours") or default.hours),
            clock=str(front.get("clock") or default.clock),
            time_zone=str(front.get("time_zone") or default.time_zone),
        )
    except (TypeError, ValueError):  # hand-edited into no policy: review_due as written holds
        return default


def moment(value: object) -> datetime | None:
    """A time of the front matter (ISO 8601, ``Z`` for UTC; UTC when it names no zone)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def day(value: object) -> date | None:
    """A date of the front matter (``2026-12-24``, or the day of a time)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        found = moment(value)
        return found.date() if found else None


def _text(value: object) -> str:
    return str(value or "")


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
