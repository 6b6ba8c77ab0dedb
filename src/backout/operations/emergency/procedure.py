"""The emergency procedure: its named steps run in order over one :class:`Run`.

A step's failure is written to the incident's timeline under the stage it names, so a failure
or a killed process leaves evidence; running the same command again continues the incident.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from backout.config import Settings
from backout.database.connection import Target, connect
from backout.database.runner import Reporter, RunOptions, StatementFailedError
from backout.errors import BackoutError, UsageError
from backout.migrations.catalog import resolved_entry
from backout.operations.approval import Operator
from backout.operations.backup import Progress
from backout.operations.emergency.incident import Clock
from backout.operations.emergency.model import (
    SEVERITIES,
    Produced,
    Request,
    Result,
    Run,
    Step,
    result_of,
)
from backout.operations.emergency.steps import DRY_RUN, ROLL_BACK
from backout.operations.operation import Confirm, Context
from backout.operations.rollback import rollback_statements_of
from backout.redaction import redact


def emergency(
    settings: Settings,
    target: Target,
    operator: Operator,
    request: Request,
    *,
    options: RunOptions | None = None,
    confirm: Confirm = lambda _: True,
    report: Reporter = lambda _: None,
    now: Clock = lambda: datetime.now(UTC),
    cwd: Path | None = None,
    backup_progress: Progress | None = None,
) -> Result:
    """Run the emergency procedure for ``request.reference`` on ``target``."""
    request = check_request(request)
    if request.incident is not None:
        raise UsageError(
            "--incident is for a shard of a fleet", hint="add --fleet/--targets and --shard I/N"
        )
    ctx = Context(settings, target, operator, options or RunOptions(), confirm, report)
    catalog, entry = resolved_entry(settings, request.reference, cwd)
    migration = entry.read()
    statements = rollback_statements_of(migration, request.rollback_file, missing=UsageError)
    with ExitStack() as resources:
        conn = resources.enter_context(
            connect(target.url, autocommit=True, lock_timeout=ctx.options.lock_timeout)
        )
        run = Run(ctx, request, catalog, entry, migration, statements, conn, resources, now)
        run.backup_progress = backup_progress
        run_steps(run, DRY_RUN if request.dry_run else ROLL_BACK)
    return result_of(run)


def run_steps(run: Run, steps: tuple[Step, ...]) -> None:
    """Each step in order. Once the incident is open, the steps still to do are recorded in
    it after every step, so a re-run knows where this one stopped."""
    for number, step in enumerate(steps):
        if not (step.after_commit and step.name in run.done_earlier):
            perform_step(run, step)
        rest = steps[number + 1 :]
        if step.name == "open the incident":
            run.done_earlier = done_earlier(run, rest)
        if run.made.incident is not None:
            later = [s.name for s in rest if s.name not in run.done_earlier]
            pending = (*run.left_undone, *later)
            if pending != run.incident.pm.steps_pending:
                run.incident.pending(pending)


def done_earlier(run: Run, rest: tuple[Step, ...]) -> frozenset[str]:
    """The steps after the commit that an earlier run of this incident completed: those it
    did not leave pending (none when it recorded nothing)."""
    pending = set(run.incident.pm.steps_pending)
    if not run.incident.continued or run.made.earlier is None or not pending:
        return frozenset()
    return frozenset(s.name for s in rest if s.after_commit and s.name not in pending)


def perform_step(run: Run, step: Step) -> None:
    """Run ``step`` and keep what it made. Before the commit a failure is noted under its
    stage and raised; after the commit it is a warning and the procedure goes on."""
    try:
        made = step.run(run)
    except Exception as exc:
        if not (step.after_commit and run.committed):
            _note_failure(run, step, exc)
            raise
        warning = after_commit_failure(step.name, exc)
        run.note(warning)
        run.left_undone.append(step.name)
        made = Produced(warning=warning)
    except BaseException as exc:  # interrupted: the timeline says where
        _note_failure(run, step, exc)
        raise
    else:
        run.completed.append(step.name)
    run.made = run.made.merged(made)
    if made.warning is not None:
        run.warnings.append(made.warning)


def _note_failure(run: Run, step: Step, exc: BaseException) -> None:
    if step.after_commit and run.committed:
        run.note(after_commit_failure(step.name, exc))
    elif step.failure is not None:
        run.note(failure_note(step.failure, exc))


def after_commit_failure(step: str, exc: BaseException) -> str:
    """What the timeline and the output say of a step that failed after the rollback committed."""
    return (
        f"{step} FAILED after the rollback committed: {_what(exc)}; "
        "run the same command again to finish the incident"
    )


def failure_note(stage: str, exc: BaseException) -> str:
    """The timeline entry of a stage that failed before the rollback committed."""
    what = _what(exc)
    if stage == "rollback":
        said = exc.hint if isinstance(exc, StatementFailedError) else None  # and what next
        return f"rollback FAILED: {what}" + (f"; {said}" if said else "")
    return f"{stage} FAILED: {what}; nothing was rolled back"


def _what(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, BackoutError):
        return exc.message
    return f"internal error: {type(exc).__name__}: {exc}"


def check_request(request: Request) -> Request:
    """The request, refused when incomplete; its free text with any password redacted (it goes
    to the postmortem, the audit table and the incident's commit)."""
    if not request.reason.strip():
        raise UsageError(
            "--reason is empty", hint="say what broke, e.g. --reason 'checkout errors since 14:02'"
        )
    if request.severity not in SEVERITIES:
        raise UsageError(f"unknown severity {request.severity!r}", hint="use SEV1 to SEV4")
    if request.no_backup and not (request.backup_waiver or "").strip():
        raise UsageError("--no-backup needs --backup-waiver saying why no backup is needed")
    return replace(
        request,
        reason=redact(request.reason),
        owner=redact(request.owner) if request.owner else request.owner,
        backup_waiver=redact(request.backup_waiver)
        if request.backup_waiver
        else request.backup_waiver,
    )
