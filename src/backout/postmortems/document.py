"""The postmortem file of an incident: YAML front matter and a Markdown body.

The front matter is written by PyYAML (``safe_dump``), never by string formatting, so text a
person typed (a reason holding a newline and ``review_due: ...``) stays a string and cannot
break it. The body comes from the ``postmortem.md.j2`` template. Files are written atomically.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from backout.postmortems.deadlines import ClockPolicy
from backout.templating import render

TEMPLATE = "postmortem.md.j2"


@dataclass(frozen=True)
class Entry:
    """One line of the timeline: when (UTC) and what happened."""

    at: datetime
    text: str


@dataclass(frozen=True)
class ActionItem:
    title: str
    owner: str
    due: date
    status: str = "open"


@dataclass(frozen=True)
class Postmortem:
    """What the postmortem file records; :func:`render_postmortem` turns it into the file."""

    id: str
    title: str
    severity: str
    environment: str
    migration: str
    owner: str
    reason: str
    operator: str
    started_at: datetime
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
    timeline: tuple[Entry, ...] = ()
    action_items: tuple[ActionItem, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def with_entry(self, at: datetime, text: str) -> Postmortem:
        return replace(self, timeline=(*self.timeline, Entry(at, text)))


def front_matter(pm: Postmortem) -> dict[str, Any]:
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
        "action_items": [
            {"title": a.title, "owner": a.owner, "due": a.due.isoformat(), "status": a.status}
            for a in pm.action_items
        ],
        "history": [{"status": "draft", "at": _iso(pm.started_at), "by": pm.operator}],
        "timeline": [{"at": _iso(e.at), "text": e.text} for e in pm.timeline],
        **pm.extra,
    }


def timeline_from(front: dict[str, Any]) -> tuple[Entry, ...]:
    """The timeline a postmortem's front matter records (to continue an interrupted incident)."""
    entries = []
    for item in front.get("timeline") or ():
        if isinstance(item, dict) and item.get("at") and item.get("text"):
            at = datetime.fromisoformat(str(item["at"]).replace("Z", "+00:00"))
            entries.append(Entry(at, str(item["text"])))
    return tuple(entries)


def render_postmortem(pm: Postmortem, templates: Path | None = None) -> str:
    """The whole file: ``---``, the YAML front matter, ``---``, then the templated body."""
    yaml_text = yaml.safe_dump(
        front_matter(pm), sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    body = render(TEMPLATE, {"pm": pm, "entries": pm.timeline}, templates)
    return f"---\n{yaml_text}---\n\n{body}"


def write_postmortem(path: Path, pm: Postmortem, templates: Path | None = None) -> None:
    """Write the file atomically: a temporary file in the same folder, then a rename."""
    write_atomically(path, render_postmortem(pm, templates))


def write_atomically(path: Path, text: str) -> None:
    """``text`` into ``path``: a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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


def join_front_matter(front: dict[str, Any], body: str) -> str:
    """The file's text from its front matter (keys in their order, unknown ones kept) and body."""
    yaml_text = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"---\n{yaml_text}---\n{body}"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None
