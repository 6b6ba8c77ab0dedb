"""Postmortem files for the tests: front matter written as a person or ``emergency`` would.

Deadline arithmetic takes an injected moment (``NOW``); the command-line tests write deadlines
relative to the moment they run, so no test depends on the day it runs.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from backout.postmortems.collection import Record, parse
from backout.postmortems.deadlines import ClockPolicy
from backout.postmortems.model import ActionItem, Entry, Postmortem

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # a Tuesday
AT = "2026-11-20T10:00:00Z"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def postmortem(incident: str, **front: Any) -> str:
    data: dict[str, Any] = {
        "id": incident,
        "title": f"Rollback of something ({incident})",
        "status": "draft",
        "severity": "SEV2",
        "owner": "Ada",
        "started_at": iso(NOW - timedelta(hours=1)),
        "rolled_back_at": iso(NOW - timedelta(hours=1)),
        "review_due": iso(NOW + timedelta(hours=71)),
        "action_items": [],
        "history": [{"status": "draft", "at": iso(NOW - timedelta(hours=1)), "by": "Ada"}],
    }
    data.update(front)
    return "---\n" + yaml.safe_dump(data, sort_keys=False) + "---\n\n# Body\n\nTODO: impact\n"


def record(**front: Any) -> Record:
    parsed = parse(postmortem("INC-20261124-01", **front), Path("INC-20261124-01-x.md"), None)
    assert isinstance(parsed, Record)
    return parsed


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout


def full_postmortem() -> Postmortem:
    """A postmortem with every field set, as ``emergency`` leaves it after a rollback."""
    rolled_back = NOW + timedelta(minutes=4, seconds=7)
    return Postmortem(
        id="INC-20261124-01",
        title="Rollback of 004_alter_events on staging",
        severity="SEV1",
        environment="staging",
        migration="004_alter_events",
        owner="Ada",
        reason="the events API returned 500s\nreview_due: never",
        operator="Bo",
        started_at=NOW,
        status="draft",
        rolled_back_at=rolled_back,
        review_due=rolled_back + timedelta(hours=72),
        clock=ClockPolicy(48, "business", "Europe/Paris"),
        approved_by="Cy",
        fix_forward="migrations/005_fix.sql",
        backup=".backout/backups/INC-20261124-01",
        backup_waiver=None,
        audit_event=42,
        rollback_sql="ALTER TABLE events DROP COLUMN score;\n",
        rollback_sha256="ab" * 32,
        introduced_by="commit 1234567 (Di)",
        rehearsal="passed",
        schema_check="restored",
        timeline=(
            Entry(NOW, "incident opened by Bo: the events API returned 500s"),
            Entry(NOW.replace(microsecond=250), "rolled back"),
        ),
        action_items=(
            ActionItem("Write, review and apply 005_fix.sql", "Ada", date(2026, 12, 9)),
            ActionItem("Alerting", "Bo", date(2026, 12, 24), "moved", "https://tracker/T-1"),
            ActionItem("Runbook", "Cy", date(2026, 12, 1), "done"),
        ),
        extra={"team": "payments"},
    )


def as_read_back(pm: Postmortem) -> Postmortem:
    """``pm`` as reading its file gives it back: without the fields only the body shows
    (``rollback_sql``, ``rollback_sha256``, ``introduced_by``), and with the history the file
    opens with when it had none (a draft, by the operator, when it started)."""
    assert pm.started_at is not None
    opening = {"status": "draft", "at": iso(pm.started_at), "by": pm.operator}
    return replace(
        pm,
        rollback_sql="",
        rollback_sha256=None,
        introduced_by=None,
        history=pm.history or (opening,),
    )
