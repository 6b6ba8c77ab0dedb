"""What the demo checks after the emergency: the column is gone and no job was lost, the audit
event, the review deadline, the fix-forward stub, the backup and the incident branch."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg

from backout import git
from backout.cli.demo.sandbox import scalar
from backout.postmortems.front_matter import read_front_matter

Check = tuple[str, bool]


def checks(
    conn: psycopg.Connection[Any], project: Path, postmortem: Path, jobs: int, has_git: bool
) -> list[Check]:
    """Each check as (what was found, whether it is right), in the order the demo shows them."""
    front = read_front_matter(postmortem.read_text(encoding="utf-8"))
    incident = str(front["id"])
    stub = project / str(front["fix_forward"])
    found = [
        _jobs_kept(conn, jobs),
        _audited(conn, incident),
        (f"review due {front['review_due']}", bool(front.get("review_due"))),
        (f"fix-forward stub {stub.relative_to(project)}", stub.is_file()),
        _backed_up(project, incident),
    ]
    if has_git:
        found.append(_branch(project, incident, [postmortem, stub]))
    return found


def _jobs_kept(conn: psycopg.Connection[Any], jobs: int) -> Check:
    left = scalar(
        conn,
        "SELECT count(*) FROM information_schema.columns"
        " WHERE table_name = 'jobs' AND column_name = 'priority'",
    )
    jobs_after = scalar(conn, "SELECT count(*) FROM jobs")
    return (
        f"jobs.priority is gone ({left} left), all {jobs_after} jobs kept",
        left == 0 and jobs_after == jobs,
    )


def _audited(conn: psycopg.Connection[Any], incident: str) -> Check:
    audit = conn.execute(
        "SELECT id, action, outcome, details->>'incident' FROM backout_audit_event"
        " ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return (
        f"audit event {audit[0] if audit else '?'}: emergency, success, {incident}",
        audit is not None and tuple(audit[1:]) == ("emergency", "success", incident),
    )


def _backed_up(project: Path, incident: str) -> Check:
    manifest = project / ".backout/backups" / incident / "manifest.json"
    items: list[Mapping[str, Any]] = (
        json.loads(manifest.read_text())["items"] if manifest.is_file() else []
    )
    return (
        f"backup {manifest.parent.relative_to(project)}: "
        + ", ".join(f"{i['table']} ({i['rows']} rows)" for i in items),
        bool(items),
    )


def _branch(project: Path, incident: str, committed: list[Path]) -> Check:
    files = git.files_on_branch(project, f"incident/{incident}")
    wanted = {str(path.relative_to(project)) for path in committed}
    return (
        f"branch incident/{incident} holds the postmortem and the stub",
        wanted <= set(files),
    )
