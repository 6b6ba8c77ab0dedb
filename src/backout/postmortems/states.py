"""The states a postmortem goes through and the rules between them. Pure.

``draft → in_review → reviewed → published → closed``, one step at a time (and one step back
from ``in_review`` or ``reviewed``); ``not_required`` from ``draft`` or ``in_review``, with a
reason, and back to ``draft``. ``closed`` needs every action item done or moved to a tracker
link, and the fix-forward migration no longer a stub. ``reviewed`` needs no ``TODO``
placeholder left in the body, unless forced with a reason. Each change is appended to the front
matter's ``history`` (state, when, by whom, why); every other key is kept as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from backout.errors import RefusedError, UsageError
from backout.postmortems.checks import PLACEHOLDER
from backout.postmortems.collection import Record
from backout.postmortems.model import ITEM_DONE, STATES, Postmortem

ALLOWED: Mapping[str, tuple[str, ...]] = {
    "draft": ("in_review", "not_required"),
    "in_review": ("reviewed", "draft", "not_required"),
    "reviewed": ("published", "in_review"),
    "published": ("closed",),
    "closed": (),
    "not_required": ("draft",),
}


def change_status(
    record: Record,
    new: str,
    *,
    by: str,
    at: datetime,
    reason: str | None = None,
    stub_left: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """The record's front matter with ``status`` set to ``new`` and the change in ``history``.

    ``stub_left``: the fix-forward migration the postmortem names is still an unfinished stub.
    ``force`` (with a ``reason``): accept ``TODO`` placeholders left in a reviewed postmortem;
    the history entry says it was forced. Raises :class:`UsageError` for an unknown state and
    :class:`RefusedError` (exit 4) for a transition the rules do not allow.
    """
    if new not in STATES:
        raise UsageError(f"unknown status {new!r}", hint=f"use one of {', '.join(STATES)}")
    current = record.pm.status
    if new == current:
        raise RefusedError(f"{record.pm.id} is already {new}", hint="nothing was changed")
    if new not in ALLOWED.get(current, ()):
        allowed = ", ".join(ALLOWED.get(current, ())) or "nothing: it is final"
        raise RefusedError(
            f"{record.pm.id} cannot go from {current} to {new}",
            hint=f"from {current} it can go to {allowed}",
        )
    if new == "not_required" and not (reason or "").strip():
        raise RefusedError(
            f"marking {record.pm.id} not_required needs a reason", hint="pass --reason TEXT"
        )
    if new == "closed":
        _check_closable(record.pm, stub_left)
    left = _placeholders_accepted(record, new, force=force, reason=reason)
    entry: dict[str, Any] = {"status": new, "at": _iso(at), "by": by}
    if reason:
        entry["reason"] = reason
    if left:
        entry["forced"] = f"{len(left)} {PLACEHOLDER} placeholder(s) left"
    front = dict(record.front)
    front["status"] = new
    front["history"] = [*(dict(h) for h in record.pm.history), entry]
    return front


def _placeholders_accepted(
    record: Record, new: str, *, force: bool, reason: str | None
) -> list[str]:
    """The placeholders left when ``new`` is ``reviewed`` and ``force`` accepts them (with a
    reason); refused without ``force``."""
    if force and not (reason or "").strip():
        raise UsageError("--force needs a reason", hint="pass --reason TEXT; it is recorded")
    left = placeholders(record) if new == "reviewed" else []
    if left and not force:
        raise RefusedError(
            f"{record.pm.id} cannot be {new}: {PLACEHOLDER} placeholders are left at "
            + ", ".join(left),
            hint="write those sections, or pass --force --reason TEXT (recorded)",
        )
    return left


def placeholders(record: Record) -> list[str]:
    """Where the body still holds a ``TODO``: ``line 23 (## Impact)``, in file lines."""
    found: list[str] = []
    heading = ""
    for number, line in enumerate(record.body.splitlines(), start=record.body_line):
        if line.startswith("#"):
            heading = line.strip()
        if PLACEHOLDER in line:
            found.append(f"line {number}" + (f" ({heading})" if heading else ""))
    return found


def _check_closable(pm: Postmortem, stub_left: bool) -> None:
    pending = [
        i.title or "(untitled)"
        for i in pm.action_items
        if i.status not in ITEM_DONE or (i.status == "moved" and not i.link)
    ]
    if pending:
        raise RefusedError(
            f"{pm.id} cannot be closed: {len(pending)} action item(s) not done: "
            + "; ".join(pending),
            hint="mark each `status: done`, or `status: moved` with a `link:` to the tracker",
        )
    if stub_left:
        raise RefusedError(
            f"{pm.id} cannot be closed: the fix-forward migration "
            f"{pm.fix_forward} is still an unfinished stub",
            hint="write and apply the corrected change first",
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
