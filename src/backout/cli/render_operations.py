"""Rendering ``status`` and the outcome of ``apply``, ``baseline`` and ``rollback`` (and the plan
a confirmation prompt shows). Pure: data in, text out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backout.cli.render import Display, statement_json, statements_text
from backout.operations import impact
from backout.operations.dry_run import FAILED, failed
from backout.operations.operation import Outcome, Plan
from backout.operations.status import MigrationStatus, State


def status_json(states: Sequence[MigrationStatus], display: Display) -> dict[str, Any]:
    """``backout status --json``: stable keys, see the README."""
    return {
        "migrations": [
            {
                "version": s.version,
                "name": s.name,
                "path": display(s.path) if s.path else None,
                "folder": display(s.folder),
                "history_table": s.history_table,
                "history_tool": s.history_tool,
                "troubles": list(s.troubles),
                "state": s.state.value,
                "lost": list(s.lost),
                "applied_at": s.applied.applied_at.isoformat()
                if s.applied and s.applied.applied_at
                else None,
                "applied_by": s.applied.applied_by if s.applied else None,
                "checksum": s.checksum,
                "rolled_back_at": s.rolled_back.at.isoformat() if s.rolled_back else None,
                "rolled_back_by": s.rolled_back.operator if s.rolled_back else None,
                "rolled_back_reason": s.rolled_back.reason if s.rolled_back else None,
                "changes": [
                    {
                        "sha": c.sha,
                        "author": c.author,
                        "at": c.authored_at.isoformat(),
                        "summary": c.summary,
                    }
                    for c in s.changes
                ],
            }
            for s in states
        ]
    }


def status_text(states: Sequence[MigrationStatus], display: Display) -> str:
    if not states:
        return "No migrations."
    out: list[str] = []
    folder = None
    width = max(len(s.name) for s in states)
    for s in states:
        if s.folder != folder:
            if folder is not None:
                out.append("")
            tool = "" if s.history_tool == "backout" else f"{s.history_tool}'s "
            out.append(f"{display(s.folder)}/ (history: {tool}{s.history_table})")
            folder = s.folder
        out.append(
            f"  {s.name.ljust(width)}  {s.state.value.ljust(11)}  {_status_detail(s)}".rstrip()
        )
        out += [
            f"      {c.sha} {c.authored_at:%Y-%m-%d} {c.author}: {c.summary}" for c in s.changes
        ]
        out += [f"      ! {trouble}" for trouble in s.troubles]
    counts: dict[str, int] = {}
    for s in states:
        counts[s.state.value] = counts.get(s.state.value, 0) + 1
    out += ["", ", ".join(f"{n} {state}" for state, n in counts.items()) + "."]
    return "\n".join(out)


def _when(s: MigrationStatus) -> str:
    """When and by whom it was applied, as far as the history table says."""
    assert s.applied is not None
    at, by = s.applied.applied_at, s.applied.applied_by
    if at is None:
        return f"(no time in {s.history_tool}'s table)" + (f" by {by}" if by else "")
    return f"{at:%Y-%m-%d %H:%M} UTC by {by or '?'}"


def _status_detail(s: MigrationStatus) -> str:
    detail = _applied_detail(s)
    if s.shares_version:
        shared = f"{', '.join(s.shares_version)} also has version {s.version}: renumber one"
        detail = f"{detail}; {shared}" if detail else shared
    return detail


def _applied_detail(s: MigrationStatus) -> str:
    if s.applied is not None:
        at = s.applied.applied_at
        when = (
            f"{at:%Y-%m-%d %H:%M} UTC"
            if at is not None
            else f"(no time in {s.history_tool}'s table)"
        )
        when += (
            f" by {s.applied.applied_by}"
            if s.applied.applied_by
            else ("" if at is None else " by ?")
        )
        if s.state is State.MODIFIED:
            return f"applied {when}; the file changed since (checksum differs)"
        if s.state is State.MISSING:
            return f"applied {when}; the file is no longer on disk"
        if s.state is State.DAMAGED:
            return f"applied {when}; lost {', '.join(s.lost)}"
        return when
    if s.rolled_back is not None:
        why = f": {s.rolled_back.reason}" if s.rolled_back.reason else ""
        return (
            f"{s.rolled_back.action} {s.rolled_back.at:%Y-%m-%d %H:%M} UTC by "
            f"{s.rolled_back.operator or '?'}{why}"
        )
    return ""


def plan_text(plan: Plan) -> str:
    """What is about to run, for a confirmation prompt."""
    out = [f"{plan.action} on {plan.target.name} ({plan.target.display}):"]
    for migration, statements in plan.steps:
        out.append(f"  {migration.name}")
        out += [f"  {line}" for line in statements_text(statements)]
        if plan.action != "apply":
            out += [f"    ! {note}" for note in migration.rollback.notes]
    out += [f"  warning: {w}" for w in plan.warnings]
    out += blast_lines(plan)
    return "\n".join(out)


def blast_lines(plan: Plan) -> list[str]:
    """The blast radius of a rollback, and the damage accepted, if any."""
    if plan.blast is None:
        return []
    lines = impact.describe(plan.blast)
    if plan.accepted_damage:
        lines.append("  damage accepted with --accept-damage (recorded in the audit row)")
    return lines


def outcome_json(outcome: Outcome, *, dry_run: bool) -> dict[str, Any]:
    plan = outcome.plan
    return {
        "action": plan.action,
        "environment": plan.target.name,
        "dry_run": dry_run,
        "migrations": [
            {
                "name": m.name,
                "version": m.version,
                "statements": [statement_json(s) for s in statements],
            }
            for m, statements in plan.steps
        ],
        "done": outcome.done,
        "failed": dry_run and failed(outcome.done),
        "recovered": outcome.recovered,
        "schema_check": outcome.schema_check,
        "smoke_checks": [{"name": r.name, "ok": r.ok, "detail": r.detail} for r in outcome.smoke],
        "warnings": list(plan.warnings),
        "blast_radius": plan.blast.to_json() if plan.blast is not None else None,
        "accepted_damage": dict(plan.accepted_damage),
    }


def outcome_text(outcome: Outcome, *, dry_run: bool) -> str:
    plan = outcome.plan
    if not plan.steps:
        notes = [f"  warning: {w}" for w in plan.warnings]
        return "\n".join([*notes, f"Nothing to {plan.action} on {plan.target.name}."])
    if dry_run and plan.action != "rollback":
        return plan_text(plan) + f"\nDry run: nothing was changed on {plan.target.name}."
    out = [f"  warning: {w}" for w in plan.warnings]
    if dry_run:
        out += blast_lines(plan)
        out += [f"  {line}" for line in outcome.done]
        out.append("Dry run: the rollback ran in a transaction that was rolled back.")
        out += dry_run_failures(outcome.done)
        return "\n".join(out)
    verb = {"apply": "Applied", "rollback": "Rolled back", "baseline": "Baselined"}[plan.action]
    out.append(f"{verb} {', '.join(outcome.done)} on {plan.target.name}.")
    for name, objects in plan.accepted_damage.items():
        out.append(f"Damaged (accepted): {name} lost {', '.join(objects)}.")
    if outcome.schema_check:
        out.append(f"Schema check: {outcome.schema_check}.")
    out += [r.describe() for r in outcome.smoke]
    return "\n".join(out)


def dry_run_failures(lines: Sequence[str]) -> list[str]:
    """The closing line of a dry run in which statements failed (none when all passed)."""
    count = sum(line.startswith(FAILED) for line in lines)
    if not count:
        return []
    return [
        f"Dry run FAILED: {count} of {len(lines)} statement{'' if len(lines) == 1 else 's'} "
        "failed (see the next step on each FAILED line); nothing was changed."
    ]
