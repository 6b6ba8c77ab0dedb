"""Incident ids and file-name slugs. Pure: no clock, no files.

An incident id is ``INC-<YYYYMMDD>-<NN>``: the UTC day the incident was opened and a sequence
number for that day, never reused (the caller passes every id already taken, in the folder and
on every branch).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import date

_ID = re.compile(r"\bINC-(?P<day>\d{8})-(?P<seq>\d{2,})\b")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def ids_in(names: Iterable[str]) -> set[str]:
    """Every incident id mentioned in ``names`` (file names, branch names)."""
    return {m.group(0) for name in names for m in _ID.finditer(name)}


def next_incident_id(day: date, taken: Iterable[str]) -> str:
    """The first id of ``day`` after every id of that day in ``taken``."""
    stamp = f"{day:%Y%m%d}"
    used = [int(m["seq"]) for m in map(_ID.fullmatch, taken) if m and m["day"] == stamp]
    return f"INC-{stamp}-{max(used, default=0) + 1:02d}"


def slug(text: str, *, limit: int = 48) -> str:
    """A short file-name-safe form: ``Alter events: add score`` -> ``alter-events-add-score``."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    words = _NOT_WORD.sub("-", plain).strip("-")
    return words[:limit].rstrip("-") or "incident"
