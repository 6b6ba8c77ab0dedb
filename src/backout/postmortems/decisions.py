"""The decisions log: one dated entry per apply or rollback on a named environment.

The strategy documents every execution in ``docs/decisions.md``; backout appends the entry for
the person. Entries are lightweight ADRs::

    ## 2026-11-24: Applied 004_alter_events_add_impact_score to staging

    - **Context**: release 12 needs the impact score
    - **Decision**: Applied 004_alter_events_add_impact_score to staging with backout
    - **Consequences**: recorded in the history table and the audit trail
    - **Owner**: github:ada

An existing log keeps its own heading level (that of its last dated heading). Rendering is
pure; :func:`append_decision` only ever appends, leaving what is there byte for byte.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from backout.redaction import redact

TITLE = "# Decisions\n"
DEFAULT_LEVEL = 2

_DATED_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+\d{4}-\d{2}-\d{2}(?!\d)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclass(frozen=True)
class Decision:
    """One entry of the decisions log."""

    date: date
    title: str
    context: str
    decision: str
    consequences: str
    owner: str


def render_entry(decision: Decision, existing: str) -> str:
    """The text to append to a log holding ``existing``: a blank line to separate it from what
    is there when needed, then the entry at the log's heading level. Each value is folded onto
    one line; the entry uses the log's line endings."""
    newline = "\r\n" if "\r\n" in existing else "\n"
    heading = "#" * heading_level(existing)
    lines = [
        f"{heading} {decision.date.isoformat()}: {_fold(decision.title)}",
        "",
        _item("Context", decision.context),
        _item("Decision", decision.decision),
        _item("Consequences", decision.consequences),
        _item("Owner", decision.owner),
    ]
    return _separator(existing, newline) + newline.join(lines) + newline


def heading_level(existing: str) -> int:
    """The level of the last heading whose text starts with an ISO date, outside code blocks;
    2 when there is none."""
    level = DEFAULT_LEVEL
    fence: str | None = None
    for line in existing.splitlines():
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
        elif opening:
            fence = opening.group(1)
        elif heading := _DATED_HEADING.match(line):
            level = len(heading.group(1))
    return level


def append_decision(path: Path, decision: Decision) -> None:
    """Append ``decision`` to the log at ``path``, creating it (and its folders) with a
    ``# Decisions`` title when it does not exist or is empty.

    The new content is written to a temporary file beside the log and renamed over it, so a
    reader or a crash sees the old log or the new one, never half an entry. The log keeps its
    permissions; a symbolic link is followed, not replaced.
    """
    target = path.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    exists = target.exists()
    before = target.read_bytes() if exists else b""
    mode = target.stat().st_mode & 0o7777 if exists else None
    if not before:
        before = TITLE.encode("utf-8")
    # Decoded only to find the heading level and line endings; the bytes are kept as they are.
    entry = redact(render_entry(decision, before.decode("utf-8", errors="replace")))
    _replace(target, before + entry.encode("utf-8"), mode)


def _replace(path: Path, data: bytes, mode: int | None) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # 0o666 lets the umask decide the permissions of a new log, as for any new file.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            temporary.chmod(mode)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _item(label: str, value: str) -> str:
    text = _fold(value)
    return f"- **{label}**: {text}" if text else f"- **{label}**:"


def _fold(value: str) -> str:
    return " ".join(line.strip() for line in value.splitlines() if line.strip())


def _separator(existing: str, newline: str) -> str:
    if not existing:
        return ""
    tail = existing[-4:].replace("\r\n", "\n")
    if tail.endswith("\n\n"):
        return ""
    return newline if tail.endswith("\n") else newline * 2
