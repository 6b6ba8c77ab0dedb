"""``backout restore <incident> --target NAME | --all`` for a fleet incident: each target's
backup put back on that target, one after another, each outcome reported.

``--target NAME`` fails as one database's restore does (its message, its exit code). ``--all``
goes on after a target fails and exits 1 when any failed, naming them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import typer

from backout.cli import render
from backout.cli.operation import operator_of
from backout.config import Settings
from backout.errors import ExitCode, RefusedError, UsageError
from backout.fleets.targets import Fleet
from backout.operations import restore as one
from backout.operations.fleet import restore as core


@dataclass(frozen=True)
class Chosen:
    """The fleet (``--targets``/``--fleet``) and which of its targets: ``--target`` or ``--all``."""

    fleet: Fleet | None
    target: str | None
    all: bool


def fleet_restore(
    settings: Settings,
    incident: str,
    chosen: Chosen,
    lock_wait: float,
    yes: bool,
    dry_run: bool,
    json_output: bool,
) -> int:
    fleet = _checked(chosen)

    def run(*, rehearse: bool) -> core.FleetRestore:
        return core.restore_fleet(
            settings,
            fleet,
            incident,
            target=chosen.target,
            operator=operator_of(None, None).name,
            lock_wait=lock_wait,
            now=lambda: datetime.now(UTC),
            dry_run=rehearse,
        )

    if dry_run or not yes:
        planned = _one_or_all(run(rehearse=True), chosen)
        if dry_run:
            return _echo(planned, settings, dry_run=True, json_output=json_output)
        _confirm(planned, settings)
    done = _one_or_all(run(rehearse=False), chosen)
    return _echo(done, settings, dry_run=False, json_output=json_output)


def _checked(chosen: Chosen) -> Fleet:
    if chosen.fleet is None:
        raise UsageError(
            "--target and --all restore a fleet incident and need the fleet",
            hint="add --targets FILE or --fleet NAME (the targets' URLs come from there)",
        )
    if (chosen.target is None) == (not chosen.all):
        both = "--target and --all were both given" if chosen.all else "no target was chosen"
        raise UsageError(
            f"a fleet incident is restored one target or all, and {both}",
            hint="give --target NAME or --all (--dry-run first shows what each would get back)",
        )
    return chosen.fleet


def _one_or_all(result: core.FleetRestore, chosen: Chosen) -> core.FleetRestore:
    """``result``; with ``--target``, its failure raised, as one database's restore would."""
    if chosen.target is not None and result.failed and result.failed[0].error is not None:
        raise result.failed[0].error
    return result


def _confirm(planned: core.FleetRestore, settings: Settings) -> None:
    if not sys.stdin.isatty():
        raise RefusedError(
            f"restoring the backups of {planned.incident} needs confirmation and this is not a "
            "terminal",
            hint="pass --yes to confirm (--dry-run shows what it would do)",
        )
    typer.echo("\n".join(lines(planned, settings, dry_run=True)), err=True)
    typed = typer.prompt(
        f"Type {planned.incident} to restore {len(planned.targets)} target(s)", err=True
    )
    if str(typed).strip().upper() != planned.incident:
        raise RefusedError("not confirmed; nothing was restored")


def _echo(
    result: core.FleetRestore, settings: Settings, *, dry_run: bool, json_output: bool
) -> int:
    if json_output:
        typer.echo(render.to_json(as_json(result, settings, dry_run=dry_run)))
    else:
        typer.echo("\n".join(lines(result, settings, dry_run=dry_run)))
    return ExitCode.FAILED if result.failed else ExitCode.OK


def lines(result: core.FleetRestore, settings: Settings, *, dry_run: bool) -> list[str]:
    head = "would restore" if dry_run else "restored"
    out = [f"{head} the backups of {result.incident}, target by target (parents first):"]
    for t in result.targets:
        if t.error is not None or t.restored is None:
            code = int(t.error.exit_code) if t.error else int(ExitCode.FAILED)
            out.append(f"  {t.target} at {t.address}: FAILED (exit {code}): {t.error}")
            continue
        done = ", ".join(
            f"{s.item.table} {s.item.rows if dry_run else s.restored} rows"
            for s in t.restored.steps
        )
        audit = "" if dry_run else f"; audit event {t.restored.audit_event}"
        out.append(f"  {t.target} at {t.address}: {done}{audit}")
    if result.left_to_other_shards:
        out.append(f"left to the other shards: {', '.join(result.left_to_other_shards)}")
    if not dry_run and any(t.restored for t in result.targets):
        out.append(_timeline(result.targets, settings))
    failed = [t.target for t in result.failed]
    if failed:
        out.append(f"{len(failed)} of {len(result.targets)} targets failed: {', '.join(failed)}.")
    return out


def _timeline(targets: Sequence[core.TargetRestore], settings: Settings) -> str:
    notes = {t.restored.postmortem for t in targets if t.restored and t.restored.postmortem}
    if notes:
        return f"timeline: {', '.join(settings.relative(p) for p in sorted(notes))}"
    return "timeline: the postmortem is not in this working tree; add the entries on its branch"


def items_json(steps: Sequence[one.Step]) -> list[dict[str, Any]]:
    """Each restored (or, in a dry run, planned) item: its table, file, columns and rows."""
    return [
        {
            "table": s.item.table,
            "file": s.item.file,
            "columns": list(s.item.columns),
            "whole": not s.item.key,
            "rows": s.item.rows,
            "restored": s.restored,
        }
        for s in steps
    ]


def as_json(result: core.FleetRestore, settings: Settings, *, dry_run: bool) -> dict[str, Any]:
    where = settings.relative
    return {
        "incident": result.incident,
        "folder": where(result.folder),
        "dry_run": dry_run,
        "targets": [
            {
                "target": t.target,
                "address": t.address,
                "folder": where(t.folder),
                "ok": t.error is None,
                "exit_code": int(t.error.exit_code) if t.error else 0,
                "error": t.error.message if t.error else None,
                "hint": t.error.hint if t.error else None,
                "items": items_json(t.restored.steps) if t.restored else [],
                "audit_event": t.restored.audit_event if t.restored else None,
                "postmortem": where(t.restored.postmortem)
                if t.restored and t.restored.postmortem
                else None,
            }
            for t in result.targets
        ],
        "failed": [t.target for t in result.failed],
        "left_to_other_shards": list(result.left_to_other_shards),
    }
