"""``backout postmortems remind``: post what is overdue and what falls due within a day to a
webhook, as one JSON message with a Slack-compatible ``text`` field.

The message is built by a pure function; :func:`post` sends it with the standard library and
turns every failure (an HTTP status, a refused connection, a timeout) into a one-line
:class:`ReminderError` that names the host, never the URL's secret path or query.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from backout import __version__
from backout.errors import BackoutError, ExitCode, UsageError
from backout.postmortems.collection import Record
from backout.postmortems.deadlines import in_words
from backout.postmortems.model import Postmortem

SOON = timedelta(days=1)
TIMEOUT = 10.0


class ReminderError(BackoutError):
    """The webhook did not take the message."""

    exit_code = ExitCode.FAILED


def message(records: Sequence[Record], now: datetime) -> dict[str, Any]:
    """The JSON message: ``text`` for chat tools, and the same facts as data."""
    overdue = [r for r in records if r.pm.overdue(now)]
    soon = [
        r
        for r in records
        if not r.pm.overdue(now)
        and (deadline := r.pm.next_deadline(now)) is not None
        and deadline <= now + SOON
    ]
    lines = []
    if overdue:
        lines.append(f"*{len(overdue)} postmortem(s) overdue*")
        lines += [_line(r.pm, now) for r in overdue]
    if soon:
        lines.append(f"*{len(soon)} due within a day*")
        lines += [_line(r.pm, now) for r in soon]
    if not lines:
        lines.append("No postmortem is overdue or due within a day.")
    return {
        "text": "\n".join(lines),
        "overdue": [_data(r, now) for r in overdue],
        "due_soon": [_data(r, now) for r in soon],
        "generated_at": now.isoformat(),
    }


def _line(pm: Postmortem, now: datetime) -> str:
    parts = []
    if pm.review_pending and pm.review_due is not None:
        parts.append(f"review {in_words(pm.review_due - now)}")
    late = pm.overdue_items(now)
    if late:
        parts.append(f"{len(late)} action item(s) overdue")
    return f"• {pm.id} {pm.title} (owner {pm.owner or 'nobody'}): {', '.join(parts) or 'due soon'}"


def _data(r: Record, now: datetime) -> dict[str, Any]:
    pm = r.pm
    return {
        "id": pm.id,
        "title": pm.title,
        "owner": pm.owner,
        "status": pm.status,
        "review_due": pm.review_due.isoformat() if pm.review_due else None,
        "review_overdue": pm.review_overdue(now),
        "overdue_action_items": [i.title for i in pm.overdue_items(now)],
        "branch": r.branch,
    }


def post(url: str, payload: dict[str, Any], *, timeout: float = TIMEOUT) -> int:
    """POST ``payload`` as JSON to ``url``; the HTTP status. Raises :class:`ReminderError`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError("the webhook must be an http:// or https:// URL")
    host = parts.hostname or "?"
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "User-Agent": f"backout/{__version__}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise ReminderError(
            f"the webhook at {host} answered HTTP {exc.code} {exc.reason}; nothing was posted",
            hint="check the webhook URL and that it accepts JSON",
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ReminderError(
            f"could not reach the webhook at {host}: {reason}; nothing was posted",
            hint="check the network and the webhook URL",
        ) from None
