"""Rendering the result of ``backout emergency``: the summary an on-call engineer reads, and the
JSON. Pure: data in, text out; the review deadline is told relative to the time passed in."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from backout.cli.render import Display, statement_json, statements_text
from backout.cli.render_operations import dry_run_failures
from backout.operations import impact
from backout.operations.dry_run import failed
from backout.postmortems.deadlines import in_words

if TYPE_CHECKING:
    from backout.operations.emergency import Result as EmergencyResult


def emergency_json(result: EmergencyResult, display: Display) -> dict[str, Any]:
    """``backout emergency --json``: stable keys, see the README."""
    return {
        "incident_id": result.incident_id,
        "migration": result.migration.name,
        "environment": result.environment,
        "dry_run": result.dry_run,
        "rollback": {
            "statements": [statement_json(s) for s in result.statements],
            "notes": list(result.migration.rollback.notes),
            "sha256": result.sql_sha256,
            "outcome": "rehearsed" if result.dry_run else "rolled_back",
            "rehearsal": result.dry_run_lines,
            "failed": result.dry_run and failed(result.dry_run_lines),
            "scratch_rehearsal": result.scratch_rehearsal,
            "schema_check": result.schema_check,
        },
        "blast_radius": result.blast.to_json() if result.blast is not None else None,
        "accepted_damage": result.accepted_damage,
        "smoke_checks": [{"name": r.name, "ok": r.ok, "detail": r.detail} for r in result.smoke],
        "postmortem": display(result.postmortem) if result.postmortem else None,
        "fix_forward": display(result.fix_forward) if result.fix_forward else None,
        "backup": _backup_json(result, display),
        "review_due": result.review_due.isoformat() if result.review_due else None,
        "audit_event": result.audit_event,
        "git": {
            "branch": result.git.branch,
            "commit": result.git.commit,
            "files": list(result.git.files),
            "identical_in_working_tree": list(result.git.identical),
        }
        if result.git
        else None,
        "warnings": result.warnings,
    }


def _backup_json(result: EmergencyResult, display: Display) -> dict[str, Any] | None:
    """What was backed up (with rows, bytes, SHA-256), or in a dry run what would be."""
    if result.backup is not None and result.backup_folder is not None:
        return {
            "folder": display(result.backup_folder),
            "items": [
                {
                    "table": i.table,
                    "columns": list(i.columns),
                    "reason": i.reason,
                    "file": i.file,
                    "rows": i.rows,
                    "bytes": i.bytes,
                    "sha256": i.sha256,
                }
                for i in result.backup.items
            ],
            "warnings": list(result.backup.warnings),
        }
    if result.backup_plan is not None:
        return {
            "folder": display(result.backup_folder) if result.backup_folder else None,
            "items": [
                {
                    "table": i.table,
                    "columns": list(i.columns),
                    "reason": i.reason,
                    "file": i.file,
                    "estimated_rows": i.estimated_rows,
                }
                for i in result.backup_plan.items
            ],
            "warnings": list(result.backup_plan.warnings),
        }
    if result.backup_folder is not None:
        return {"folder": display(result.backup_folder), "items": [], "warnings": []}
    return None


def emergency_text(result: EmergencyResult, display: Display, now: datetime) -> str:
    """The summary an on-call engineer reads at 3 a.m.: what ran, where things are, what next."""
    out = [f"warning: {w}" for w in result.warnings]
    if result.dry_run:
        out += _rehearsed(result)
    else:
        out += _rolled_back(result, display)
        out += _review_due(result, now)
        out += _next_steps(result, display)
    return "\n".join(out)


def _rollback_sql(result: EmergencyResult) -> list[str]:
    return statements_text(result.statements) + [
        f"  ! {note}" for note in result.migration.rollback.notes
    ]


def _rehearsed(result: EmergencyResult) -> list[str]:
    """A dry run: the SQL, what the backup would hold, and how the rehearsals went."""
    name = result.migration.name
    out = [f"Dry run of the emergency rollback of {name} on {result.environment}:"]
    out += _rollback_sql(result)
    if result.blast is not None:
        out += impact.describe(result.blast)
    if result.backup_plan is not None:
        out.append("The backup would hold:")
        out += [
            f"  {i.table} ({', '.join(i.columns)}), about {i.estimated_rows} rows: {i.reason}"
            for i in result.backup_plan.items
        ] or ["  nothing: the rollback destroys no table data"]
        out += [f"  note: {w}" for w in result.backup_plan.warnings]
    if result.scratch_rehearsal:
        out.append(f"On a scratch database: {result.scratch_rehearsal}")
    out.append("Rehearsal, in a transaction that was rolled back:")
    out += [f"  {line}" for line in result.dry_run_lines]
    out += dry_run_failures(result.dry_run_lines)
    out.append("Nothing was changed, written or committed.")
    return out


def _rolled_back(result: EmergencyResult, display: Display) -> list[str]:
    """What ran and where everything it wrote is."""
    name = result.migration.name
    out = [f"{result.incident_id}: rolled back {name} on {result.environment}"]
    out += _rollback_sql(result)
    for name, objects in result.accepted_damage.items():
        out.append(f"damaged     {name} lost {', '.join(objects)} (accepted)")
    if result.scratch_rehearsal:
        out.append(f"rehearsal   {result.scratch_rehearsal}")
    if result.schema_check:
        out.append(f"schema      {result.schema_check}")
    out += [f"smoke       {r.describe()}" for r in result.smoke]
    if result.audit_event is not None:
        out.append(f"audit event {result.audit_event}, SHA-256 of the SQL {result.sql_sha256}")
    if result.backup_folder:
        out.append(f"backup      {display(result.backup_folder)}/ (RESTORE.md says how)")
        for item in result.backup.items if result.backup else ():
            out.append(f"  {item.file}: {item.table}, {item.rows} rows, {item.bytes} bytes")
    if result.postmortem:
        out.append(f"postmortem  {display(result.postmortem)}")
    if result.fix_forward:
        out.append(f"fix-forward {display(result.fix_forward)} (an unfinished stub)")
    if result.git:
        out.append(f"committed   both on branch {result.git.branch} ({result.git.commit[:12]})")
    return out


def _review_due(result: EmergencyResult, now: datetime) -> list[str]:
    if not result.review_due:
        return []
    local = result.review_due.astimezone()
    return [f"Review due by {local:%Y-%m-%d %H:%M %Z} ({in_words(result.review_due - now)})."]


def _next_steps(result: EmergencyResult, display: Display) -> list[str]:
    steps = _switch_to_the_branch(result, display)
    steps.append("fill in the postmortem: impact, detection, root cause, lessons")
    if result.fix_forward:
        steps.append(f"write the corrected change in {display(result.fix_forward)}")
    if result.git:
        files = " ".join(result.git.files)
        message = f"'{result.incident_id}: postmortem and fix-forward'"
        steps.append(f"commit only those files there: git commit -m {message} -- {files}")
        steps.append(f"push the branch for review: git push -u origin {result.git.branch}")
    steps.append("hold the postmortem review before the deadline")
    return ["Next:"] + [f"  {n}. {text}" for n, text in enumerate(steps, start=1)]


def _switch_to_the_branch(result: EmergencyResult, display: Display) -> list[str]:
    """The first step when the files are on ``incident/<id>``: switch to it. Git refuses while
    the working tree holds untracked copies of them: identical ones are removed first (the
    branch has the same bytes); others (edited since, staged, or kept for a re-run of an
    unfinished incident) are moved aside once the incident is finished."""
    if not result.git:
        return []
    branch, same = result.git.branch, result.git.identical
    others = [f for f in result.git.files if f not in same]
    steps = []
    if same:
        steps.append(
            f"the branch holds the postmortem and the stub; your working tree has identical "
            f"untracked copies, which make git switch refuse: rm -- {' '.join(same)}"
        )
    if others:
        steps.append(
            f"your working tree has {', '.join(others)} (edited since, staged, or kept for a "
            f"re-run of an unfinished incident): once the incident is finished, move them "
            f"aside (git stash push --include-untracked -- {' '.join(others)})"
        )
    steps.append(f"switch to the branch that holds them: git switch {branch}")
    return steps
