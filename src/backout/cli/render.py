"""Rendering core results for people (text) and machines (JSON). Pure: data in, text out."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backout.migrations.file import MigrationFile
from backout.migrations.lint import Finding, Report, Severity
from backout.migrations.statements import Flag, Statement
from backout.operations.operation import Outcome, Plan
from backout.operations.status import MigrationStatus, State
from backout.postmortems.deadlines import in_words

if TYPE_CHECKING:
    from backout.operations.emergency import Result as EmergencyResult

Display = Callable[[Path], str]


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def migration_json(m: MigrationFile, display: Display) -> dict[str, Any]:
    """``backout show --json``: stable keys, see the README."""
    return {
        "version": m.version,
        "name": m.name,
        "path": display(m.path),
        "folder": display(m.folder),
        "header": dict(m.header),
        "statements": [_statement_json(s) for s in m.statements],
        "rollback": {
            "statements": [_statement_json(s) for s in m.rollback.statements],
            "notes": list(m.rollback.notes),
            "source": m.rollback.source,
        },
        "rollback_path": display(m.rollback.path) if m.rollback.path else None,
        "checksum": m.checksum,
        "rollback_checksum": m.rollback.checksum,
        "flags": _flags_json(m),
        "problems": [
            {"code": p.code, "line": p.line, "message": p.message} for p in m.all_problems
        ],
    }


def _statement_json(s: Statement) -> dict[str, Any]:
    return {"sql": s.sql, "line": s.line}


def _flags_json(m: MigrationFile) -> list[dict[str, Any]]:
    flags = []
    for section, statements in (("forward", m.statements), ("rollback", m.rollback.statements)):
        for s in statements:
            for flag in sorted(s.flags):
                flags.append(
                    {
                        "flag": str(flag),
                        "section": section,
                        "line": s.line,
                        "detail": _detail(s, flag),
                    }
                )
    return flags


def _detail(s: Statement, flag: Flag) -> str:
    if flag is Flag.DESTROYS_DATA:
        return ", ".join(loss.describe() for loss in s.data_loss)
    if flag is Flag.NON_TRANSACTIONAL:
        return s.non_transactional_reason or s.kind
    return s.sql.split()[0].upper()


def migration_text(m: MigrationFile, display: Display) -> str:
    """``backout show``: the parsed migration, rollback SQL exactly as it would run."""
    out = [m.name, f"  file      {display(m.path)}", f"  checksum  sha256:{m.checksum}"]
    if m.rollback.checksum:
        out.append(f"  rollback  sha256:{m.rollback.checksum}")
    out += ["", "Header"]
    width = max((len(k) for k in m.header), default=0)
    out += [f"  {k.ljust(width)}  {v}" for k, v in m.header.items()] or ["  (none)"]
    out += ["", f"Forward SQL ({_count(m.statements)})"]
    out += _statements_text(m.statements) or ["  (none)"]
    out.append("")
    rollback = m.rollback
    if not rollback.found:
        out += ["Rollback SQL", "  (none documented)"]
    else:
        where = display(rollback.path) if rollback.path and rollback.path != m.path else "this file"
        out.append(
            f"Rollback SQL ({_count(rollback.statements)}; {rollback.source} in {where} at line "
            f"{rollback.line}; exactly what would run, in order)"
        )
        out += _statements_text(rollback.statements) or ["  (no statement)"]
    if rollback.notes:
        out += ["", "Rollback notes"]
        out += [f"  ! {note}" for note in rollback.notes]
    if m.all_problems:
        out += ["", "Problems (see `backout lint`)"]
        out += [f"  line {p.line}: {p.code}: {p.message}" for p in m.all_problems]
    return "\n".join(out)


def _count(statements: tuple[Statement, ...]) -> str:
    return f"{len(statements)} statement" + ("" if len(statements) == 1 else "s")


def _statements_text(statements: tuple[Statement, ...]) -> list[str]:
    out: list[str] = []
    for s in statements:
        marks = "; ".join(f"{flag}: {_detail(s, flag)}" for flag in sorted(s.flags))
        out.append(f"  line {s.line}" + (f"  [{marks}]" if marks else ""))
        out += [f"    {line}".rstrip() for line in (s.sql + ";").split("\n")]
    return out


def lint_text(report: Report, display: Display) -> list[tuple[str, str | None]]:
    """``backout lint`` as lines with an optional colour, grouped by file."""
    out: list[tuple[str, str | None]] = []
    current: Path | None = None
    for f in report.findings:
        if f.file != current:
            if current is not None:
                out.append(("", None))
            out.append((display(f.file), "bright_white"))
            current = f.file
        colour = "red" if f.severity is Severity.ERROR else "yellow"
        out.append((f"  {f.line:>4}  {f.severity.value:<7}  {f.rule}: {f.message}", colour))
    if report.findings:
        out.append(("", None))
    out.append((_summary(report), "red" if report.errors else "green"))
    return out


def _summary(report: Report) -> str:
    files = f"{report.files} file" + ("" if report.files == 1 else "s")
    if not report.findings:
        return f"No problems found in {files}."
    errors = f"{report.errors} error" + ("" if report.errors == 1 else "s")
    warnings = f"{report.warnings} warning" + ("" if report.warnings == 1 else "s")
    return f"Found {errors} and {warnings} in {files}."


def lint_json(report: Report, display: Display) -> dict[str, Any]:
    return {
        "files": report.files,
        "errors": report.errors,
        "warnings": report.warnings,
        "findings": [_finding_json(f, display) for f in report.findings],
    }


def _finding_json(f: Finding, display: Display) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "severity": f.severity.value,
        "file": display(f.file),
        "line": f.line,
        "message": f.message,
    }


def lint_github(report: Report, display: Display) -> str:
    """GitHub Actions workflow commands: one annotation per finding."""
    return "\n".join(
        f"::{f.severity.value} file={_escape(display(f.file), True)},line={f.line},"
        f"title={_escape(f.rule, True)}::{_escape(f.message, False)}"
        for f in report.findings
    )


def _escape(value: str, prop: bool) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def statements_sql(statements: Sequence[Statement]) -> str:
    """Statements as a runnable script, each with its ``;``."""
    return "".join(f"{s.sql};\n" for s in statements)


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
                "state": s.state.value,
                "applied_at": s.applied.applied_at.isoformat() if s.applied else None,
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
            out.append(f"{display(s.folder)}/ (history: {s.history_table})")
            folder = s.folder
        out.append(
            f"  {s.name.ljust(width)}  {s.state.value.ljust(11)}  {_status_detail(s)}".rstrip()
        )
        out += [
            f"      {c.sha} {c.authored_at:%Y-%m-%d} {c.author}: {c.summary}" for c in s.changes
        ]
    counts: dict[str, int] = {}
    for s in states:
        counts[s.state.value] = counts.get(s.state.value, 0) + 1
    out += ["", ", ".join(f"{n} {state}" for state, n in counts.items()) + "."]
    return "\n".join(out)


def _status_detail(s: MigrationStatus) -> str:
    if s.applied is not None:
        when = f"{s.applied.applied_at:%Y-%m-%d %H:%M} UTC by {s.applied.applied_by or '?'}"
        if s.state is State.MODIFIED:
            return f"applied {when}; the file changed since (checksum differs)"
        if s.state is State.MISSING:
            return f"applied {when}; the file is no longer on disk"
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
        out += [f"  {line}" for line in _statements_text(statements)]
        if plan.action != "apply":
            out += [f"    ! {note}" for note in migration.rollback.notes]
    out += [f"  warning: {w}" for w in plan.warnings]
    return "\n".join(out)


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
                "statements": [_statement_json(s) for s in statements],
            }
            for m, statements in plan.steps
        ],
        "done": outcome.done,
        "recovered": outcome.recovered,
        "schema_check": outcome.schema_check,
        "smoke_checks": [{"name": r.name, "ok": r.ok, "detail": r.detail} for r in outcome.smoke],
        "warnings": list(plan.warnings),
    }


def outcome_text(outcome: Outcome, *, dry_run: bool) -> str:
    plan = outcome.plan
    if not plan.steps:
        return f"Nothing to {plan.action} on {plan.target.name}."
    if dry_run and plan.action != "rollback":
        return plan_text(plan) + f"\nDry run: nothing was changed on {plan.target.name}."
    out = [f"  warning: {w}" for w in plan.warnings]
    if dry_run:
        out += [f"  {line}" for line in outcome.done]
        out.append("Dry run: the rollback ran in a transaction that was rolled back.")
        return "\n".join(out)
    verb = {"apply": "Applied", "rollback": "Rolled back", "baseline": "Baselined"}[plan.action]
    out.append(f"{verb} {', '.join(outcome.done)} on {plan.target.name}.")
    if outcome.schema_check:
        out.append(f"Schema check: {outcome.schema_check}.")
    out += [r.describe() for r in outcome.smoke]
    return "\n".join(out)


def emergency_json(result: EmergencyResult, display: Display) -> dict[str, Any]:
    """``backout emergency --json``: stable keys, see the README."""
    return {
        "incident_id": result.incident_id,
        "migration": result.migration.name,
        "environment": result.environment,
        "dry_run": result.dry_run,
        "rollback": {
            "statements": [_statement_json(s) for s in result.statements],
            "notes": list(result.migration.rollback.notes),
            "sha256": result.sql_sha256,
            "outcome": "rehearsed" if result.dry_run else "rolled_back",
            "rehearsal": result.dry_run_lines,
            "scratch_rehearsal": result.scratch_rehearsal,
            "schema_check": result.schema_check,
        },
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


def emergency_text(result: EmergencyResult, display: Display) -> str:
    """The summary an on-call engineer reads at 3 a.m.: what ran, where things are, what next."""
    out = [f"warning: {w}" for w in result.warnings]
    name = result.migration.name
    if result.dry_run:
        out.append(f"Dry run of the emergency rollback of {name} on {result.environment}:")
        out += _statements_text(result.statements)
        out += [f"  ! {note}" for note in result.migration.rollback.notes]
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
        out.append("Nothing was changed, written or committed.")
        return "\n".join(out)
    out.append(f"{result.incident_id}: rolled back {name} on {result.environment}")
    out += _statements_text(result.statements)
    out += [f"  ! {note}" for note in result.migration.rollback.notes]
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
    if result.review_due:
        local = result.review_due.astimezone()
        out.append(
            f"Review due by {local:%Y-%m-%d %H:%M %Z} "
            f"({in_words(result.review_due - datetime.now(UTC))})."
        )
    steps = ["fill in the postmortem: impact, detection, root cause, lessons"]
    if result.fix_forward:
        steps.append(f"write the corrected change in {display(result.fix_forward)}")
    if result.git:
        steps.append(f"push the branch for review: git push -u origin {result.git.branch}")
    steps.append("hold the postmortem review before the deadline")
    out.append("Next:")
    out += [f"  {n}. {text}" for n, text in enumerate(steps, start=1)]
    return "\n".join(out)
