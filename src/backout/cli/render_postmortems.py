"""How ``backout postmortems`` prints: tables and JSON with stable keys. Pure.

Times are stored in UTC and shown in the reader's local time zone (``TZ``), with the time left
in words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backout.postmortems.collection import Collection, Record
from backout.postmortems.deadlines import in_words
from backout.postmortems.model import Postmortem

if TYPE_CHECKING:
    from backout.operations.fleet.merge import Merged
    from backout.postmortems.digest import Digest

Display = Callable[[Path], str]


def list_json(
    records: Sequence[Record], collection: Collection, now: datetime, display: Display
) -> dict[str, Any]:
    """``backout postmortems list --json``: see the README for the keys."""
    return {
        "postmortems": [_summary_json(r, now, display) for r in records],
        "broken": [
            {"path": display(b.path), "branch": b.branch, "line": b.line, "message": b.message}
            for b in collection.broken
        ],
        "now": now.isoformat(),
    }


def _summary_json(r: Record, now: datetime, display: Display) -> dict[str, Any]:
    pm = r.pm
    return {
        "id": pm.id,
        "title": pm.title,
        "status": pm.status,
        "severity": pm.severity,
        "owner": pm.owner,
        "review_due": _iso(pm.review_due),
        "review_due_in_words": in_words(pm.review_due - now) if pm.review_due else None,
        "overdue": pm.overdue(now),
        "review_overdue": pm.review_overdue(now),
        "open_action_items": len(pm.open_items()),
        "overdue_action_items": len(pm.overdue_items(now)),
        "path": display(r.path),
        "branch": r.branch,
    }


def list_text(records: Sequence[Record], now: datetime, display: Display) -> str:
    if not records:
        return "No postmortems."
    header = ("ID", "SEV", "STATUS", "OWNER", "REVIEW DUE", "", "ITEMS", "TITLE")
    rows = [header, *(_row(r, now) for r in records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
        + "  "
        + row[-1]
        for row in rows
    ]
    overdue = sum(1 for r in records if r.pm.overdue(now))
    lines += ["", f"{len(records)} postmortem(s), {overdue} overdue."]
    return "\n".join(line.rstrip() for line in lines)


def _row(r: Record, now: datetime) -> tuple[str, ...]:
    pm = r.pm
    due = _local(pm.review_due) if pm.review_due and pm.review_pending else "-"
    items = f"{len(pm.open_items())} open" + (
        f", {len(pm.overdue_items(now))} late" if pm.overdue_items(now) else ""
    )
    title = pm.title + (f" [branch {r.branch}]" if r.branch else "")
    return (pm.id, pm.severity, pm.status, pm.owner, due, _when(pm, now), items, title)


def _when(pm: Postmortem, now: datetime) -> str:
    if pm.review_pending and pm.review_due is not None:
        return in_words(pm.review_due - now)
    return ""


def record_json(r: Record, now: datetime, display: Display) -> dict[str, Any]:
    return {
        **_summary_json(r, now, display),
        "front_matter": dict(r.front),
        "action_items": [
            {
                "title": i.title,
                "owner": i.owner,
                "due": i.due.isoformat() if i.due else None,
                "status": i.status,
                "link": i.link,
                "overdue": i.overdue(now.date()),
            }
            for i in r.pm.action_items
        ],
        "history": [dict(h) for h in r.pm.history],
    }


SHOWN_AS_WRITTEN = (
    *("environment", "migration", "started_at", "rolled_back_at", "fix_forward", "backup"),
    *("audit_event", "approved_by"),
)
"""The front matter values ``show`` prints as they are written in the file."""


def record_text(r: Record, now: datetime, display: Display) -> str:
    pm = r.pm
    where = display(r.path) + (f" (on branch {r.branch})" if r.branch else "")
    out = [f"{pm.id}: {pm.title}", f"  file           {where}"]
    out += [
        f"  status         {pm.status}",
        f"  severity       {pm.severity}",
        f"  owner          {pm.owner}",
    ]
    if pm.review_due is not None:
        state = (
            in_words(pm.review_due - now)
            if pm.review_pending
            else f"no longer applies: {pm.status}"
        )
        out.append(f"  review         due {_local(pm.review_due)} ({state})")
    out += [
        f"  {key:<15}{r.front[key]}"
        for key in SHOWN_AS_WRITTEN
        if r.front.get(key) not in (None, "")
    ]
    out += ["", "Action items", *(_item_lines(pm, now) or ["  none"])]
    out += ["", "History", *(_history_lines(pm) or ["  none"])]
    return "\n".join(out)


def _item_lines(pm: Postmortem, now: datetime) -> list[str]:
    return [
        f"  {n}. [{i.status}] {i.title} (owner {i.owner or 'nobody'}, due {i.due or 'no date'}"
        + (", OVERDUE" if i.overdue(now.date()) else "")
        + (f", {i.link}" if i.link else "")
        + ")"
        for n, i in enumerate(pm.action_items, start=1)
    ]


def _history_lines(pm: Postmortem) -> list[str]:
    return [
        f"  {h.get('at', '?')}  {h.get('status', '?')}  by {h.get('by', '?')}"
        + (f": {h['reason']}" if h.get("reason") else "")
        for h in pm.history
    ]


def digest_json(d: Digest, display: Display) -> dict[str, Any]:
    def ids(records: Sequence[Record]) -> list[dict[str, Any]]:
        return [
            {
                "id": r.pm.id,
                "title": r.pm.title,
                "status": r.pm.status,
                "owner": r.pm.owner,
                "path": display(r.path),
                "branch": r.branch,
            }
            for r in records
        ]

    return {
        "since": d.since.isoformat(),
        "now": d.now.isoformat(),
        "opened": ids(d.opened),
        "reviewed": ids(d.reviewed),
        "closed": ids(d.closed),
        "overdue": ids(d.overdue),
        "due_soon": ids(d.due_soon),
        "oldest_action_items": [
            {
                "id": r.pm.id,
                "title": i.title,
                "owner": i.owner,
                "due": i.due.isoformat() if i.due else None,
            }
            for r, i in d.oldest_items
        ],
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _local(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z")


def merged_text(merged: Merged, display: Display) -> str:
    """``backout postmortems merge``: which shards reported, the postmortem, what is left."""
    folded, pm = merged.folded, merged.folded.pm
    count = folded.count
    reported = "shards " + (", ".join(f"{i}/{count}" for i in folded.reported) or "none")
    verb = "created" if merged.created else "updated" if merged.written else "unchanged"
    parts = len(merged.parts)
    out = [
        f"{merged.incident}: {parts} part{'' if parts == 1 else 's'} merged; {reported} reported"
    ]
    out.append(f"postmortem  {display(merged.postmortem)} ({verb})")
    out += [f"  {t.name}  {t.outcome}" + (f"  {t.detail}" if t.detail else "") for t in pm.targets]
    if merged.fix_forward:
        out.append(f"fix-forward {display(merged.fix_forward)} (an unfinished stub)")
    if merged.git:
        out.append(f"committed   on branch {merged.git.branch} ({merged.git.commit[:12]})")
    if pm.review_due:
        out.append(f"Review due by {pm.review_due:%Y-%m-%d %H:%M} UTC.")
    out += [f"warning: {w}" for w in merged.warnings]
    out += [f"Pending: {step}" for step in pm.steps_pending]
    if merged.complete:
        out.append(f"All {count} shards reported; nothing is pending.")
    return "\n".join(out)


def merged_json(merged: Merged, display: Display) -> dict[str, Any]:
    """``backout postmortems merge --json``: see the README for the keys."""
    folded, pm, git = merged.folded, merged.folded.pm, merged.git
    return {
        "incident": merged.incident,
        "postmortem": display(merged.postmortem),
        "created": merged.created,
        "written": merged.written,
        "shards": folded.count,
        "reported": list(folded.reported),
        "missing": list(folded.missing),
        "stopped": list(folded.stopped),
        "targets": [{"name": t.name, "outcome": t.outcome} for t in pm.targets],
        "targets_left": list(folded.left),
        "parts": [display(p) for p in merged.parts],
        "rolled_back_at": pm.rolled_back_at.isoformat() if pm.rolled_back_at else None,
        "review_due": pm.review_due.isoformat() if pm.review_due else None,
        "fix_forward": display(merged.fix_forward) if merged.fix_forward else None,
        "git": {"branch": git.branch, "commit": git.commit} if git else None,
        "steps_pending": list(pm.steps_pending),
        "complete": merged.complete,
        "warnings": list(merged.warnings),
        "exit_code": int(merged.exit_code),
    }
