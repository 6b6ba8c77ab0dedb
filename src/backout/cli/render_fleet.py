"""Rendering a fleet-wide rollback or emergency: the confirmation, the targets and their
outcomes, the one incident, and the JSON. Pure: data in, text out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backout.cli.render import Display, statements_text
from backout.operations import impact
from backout.operations.fleet.engine import Status, TargetOutcome
from backout.operations.fleet.model import (
    DONE_WORDS,
    DRY_RUN_WORDS,
    FleetEmergencyResult,
    FleetPlan,
    FleetResult,
)
from backout.postmortems.deadlines import in_words

_SHOWN_PER_WAVE = 8
DETAIL_KEYS = (
    *("audit_event", "rolled_back_at", "backup", "schema_check", "smoke_checks", "warnings"),
    *("dry_run", "blast_radius", "backup_items"),
)
"""What ``--json`` says of every target (null where it does not apply: a dry run has no audit
event, a target that failed before it started has none of them)."""


_KEYS = {
    Status.DONE: "done",
    Status.EARLIER: "done_earlier",
    Status.SKIPPED: "skipped",
    Status.FAILED: "failed",
    Status.NOT_STARTED: "not_started",
}


def outcome_key(status: Status) -> str:
    """A status as ``--json`` names it."""
    return _KEYS[status]


def _word(status: Status, dry_run: bool) -> str:
    return {**DONE_WORDS, **(DRY_RUN_WORDS if dry_run else {})}.get(status, status.value)


def plan_text(plan: FleetPlan) -> str:
    """What the fleet's one confirmation shows: the SQL, the waves, the targets left alone,
    and the canary's blast radius."""
    fleet, count = plan.fleet, sum(len(w) for w in plan.waves)
    out = [
        f"{plan.action} of {plan.migration} on fleet {fleet.name}: {count} targets in "
        f"{len(plan.waves)} waves, at most {fleet.concurrency} at once; stops at the first failure"
    ]
    out += statements_text(plan.statements)
    for number, wave in enumerate(plan.waves, start=1):
        label = "canary" if number == 1 else f"wave {number}"
        shown = ", ".join(wave[:_SHOWN_PER_WAVE]) + (", ..." if len(wave) > _SHOWN_PER_WAVE else "")
        out.append(f"  {label}: {len(wave)} target{'' if len(wave) == 1 else 's'}: {shown}")
    out += [f"  {o.status.value}: {o.name} ({o.reason})" for o in plan.left_out]
    out += [f"  warning: {w}" for w in plan.warnings]
    if plan.blast is not None:
        out.append(f"On the canary {plan.waves[0][0]}:")
        out += impact.describe(plan.blast)
    return "\n".join(out)


def prompt(plan: FleetPlan) -> str:
    count = sum(len(w) for w in plan.waves)
    return (
        f"Type {plan.confirm_word} to roll back {plan.migration} on {count} targets of "
        f"fleet {plan.fleet.name}"
    )


def targets_text(result: FleetResult) -> list[str]:
    """The summary line, then one line per target: its outcome and the one-line reason."""
    outcomes = result.outcomes
    counts = {s: sum(1 for o in outcomes if o.status is s) for s in Status}
    summary = ", ".join(f"{n} {_word(s, result.dry_run)}" for s, n in counts.items() if n)
    what = "Dry run of the rollback" if result.dry_run else "Rollback"
    out = [f"{what} of {result.migration} on fleet {result.fleet.name}: {summary}."]
    width = max((len(o.name) for o in outcomes), default=0)
    for o in outcomes:
        word = _word(o.status, result.dry_run)
        out.append(f"  {o.name:<{width}}  {word:<19} {o.reason}".rstrip())
        if result.dry_run:
            out += [f"  {'':<{width}}  {line}" for line in dry_run_lines(o)]
    failures = result.rollout.failures
    if failures and not result.dry_run:
        first = failures[0]
        out.append(
            f"Stopped at the first failure: {first.name} (exit {first.exit_code}); "
            "run the same command again to continue with the targets left."
        )
    return out


def dry_run_lines(outcome: TargetOutcome) -> list[str]:
    """Under a target in a dry run: what the rollback would lock and remove there, what would
    fail or wait, and the dry run's statements that did not pass (the ones that did are not
    repeated for every target)."""
    blast = outcome.details.get("blast_radius")
    out = [blast_summary(blast)] if isinstance(blast, dict) else []
    ran = outcome.details.get("dry_run")
    if isinstance(ran, list):
        out += [str(line) for line in ran if not str(line).startswith("ok")]
    return out


def blast_summary(blast: dict[str, Any]) -> str:
    """One line of a target's blast radius (its ``--json`` form): the locks with the rows they
    cover, how many objects go, and what would fail, wait or be damaged."""
    statements = blast.get("statements", [])
    locks = {
        (lk["mode"], lk["relation"]): lk.get("rows") for st in statements for lk in st["locks"]
    }
    shown = [
        f"{mode} on {relation}"
        + (f" ({rows:,} rows)" if isinstance(rows, int) and rows > 0 else "")
        for (mode, relation), rows in locks.items()
    ]
    removed = sum(len(st["removes"]) for st in statements)
    parts = [f"locks {', '.join(shown) or 'nothing'}", f"removes {removed} objects"]
    waiting = sum(len(st["blocked_by"]) for st in statements)
    if waiting:
        parts.append(f"{waiting} sessions hold or wait for a conflicting lock")
    parts += [
        f"line {st['line']} WOULD FAIL: {st['failure']}" for st in statements if st["failure"]
    ]
    damage = blast.get("damage") or {}
    parts += [f"damages {name}" for name in damage]
    return "; ".join(parts)


def fleet_json(result: FleetResult) -> dict[str, Any]:
    """``--json`` of a fleet run: stable keys, see the README."""
    urls = {t.name: t.display for t in result.fleet.targets}
    return {
        "fleet": result.fleet.name,
        "migration": result.migration,
        "action": result.action,
        "dry_run": result.dry_run,
        "exit_code": int(result.exit_code),
        "concurrency": result.fleet.concurrency,
        "waves": [
            {
                "number": w.number,
                "targets": [o.name for o in w.outcomes],
                "seconds": round(w.seconds, 3),
            }
            for w in result.rollout.waves
        ],
        "targets": [_target_json(o, urls.get(o.name)) for o in result.outcomes],
        **{outcome_key(s): list(result.named(s)) for s in Status},
    }


def _target_json(outcome: TargetOutcome, url: str | None) -> dict[str, Any]:
    return {
        "name": outcome.name,
        "url": url,
        "outcome": outcome_key(outcome.status),
        "reason": outcome.reason or None,
        "exit_code": int(outcome.exit_code),
        "seconds": round(outcome.seconds, 3) if outcome.seconds is not None else None,
        **{key: outcome.details.get(key) for key in DETAIL_KEYS},
    }


def emergency_text(result: FleetEmergencyResult, display: Display, now: datetime) -> str:
    """The fleet emergency's summary: the incident, then every target's outcome."""
    out = [f"warning: {w}" for w in result.warnings]
    if result.incident_id:
        out.append(f"{result.incident_id}: emergency rollback on fleet {result.result.fleet.name}")
    if result.scratch_rehearsal:
        out.append(f"rehearsal   {result.scratch_rehearsal}")
    if result.backups:
        out.append(f"backups     {display(result.backups)}/<target>/ (RESTORE.md in each)")
    if result.postmortem:
        out.append(f"postmortem  {display(result.postmortem)}")
    if result.part:
        out.append(f"part        {display(result.part)}")
        out.append(
            f"  fold every shard's part in with `backout postmortems merge {result.incident_id}`"
        )
    if result.fix_forward:
        out.append(f"fix-forward {display(result.fix_forward)} (an unfinished stub)")
    if result.git:
        out.append(f"committed   on branch {result.git.branch} ({result.git.commit[:12]})")
    if result.review_due:
        local = result.review_due.astimezone()
        out.append(
            f"Review due by {local:%Y-%m-%d %H:%M %Z} ({in_words(result.review_due - now)})."
        )
    if result.stopped:
        out.append(f"Nothing was rolled back: {result.stopped}")
    out += targets_text(result.result)
    if result.result.dry_run:
        out.append("Nothing was changed, written or committed.")
    return "\n".join(out)


def emergency_json(result: FleetEmergencyResult, display: Display) -> dict[str, Any]:
    git = result.git
    return {
        **fleet_json(result.result),
        "incident_id": result.incident_id,
        "postmortem": display(result.postmortem) if result.postmortem else None,
        "part": display(result.part) if result.part else None,
        "fix_forward": display(result.fix_forward) if result.fix_forward else None,
        "backups": display(result.backups) if result.backups else None,
        "rolled_back_at": result.rolled_back_at.isoformat() if result.rolled_back_at else None,
        "review_due": result.review_due.isoformat() if result.review_due else None,
        "scratch_rehearsal": result.scratch_rehearsal,
        "git": {"branch": git.branch, "commit": git.commit, "files": list(git.files)}
        if git
        else None,
        "stopped": result.stopped,
        "warnings": result.warnings,
    }
