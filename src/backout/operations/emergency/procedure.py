"""The emergency procedure: its named steps run in order over one :class:`Run`.

A step's failure is written to the incident's timeline under the stage it names, so a failure
or a killed process leaves evidence; running the same command again continues the incident.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from backout.config import Settings
from backout.database.connection import Target, connect
from backout.database.runner import Reporter, RunOptions
from backout.errors import BackoutError, UsageError
from backout.migrations.catalog import project_catalog
from backout.operations.approval import Operator
from backout.operations.backup import Progress
from backout.operations.emergency.incident import Clock
from backout.operations.emergency.model import SEVERITIES, Request, Result, Run, Step, result_of
from backout.operations.emergency.steps import DRY_RUN, ROLL_BACK
from backout.operations.operation import Confirm, Context
from backout.operations.rollback import rollback_statements_of


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
    _check_request(request)
    ctx = Context(settings, target, operator, options or RunOptions(), confirm, report)
    catalog = project_catalog(settings)
    entry = catalog.resolve(request.reference, cwd or settings.root)
    migration = entry.read()
    statements = rollback_statements_of(migration, request.rollback_file, missing=UsageError)
    with ExitStack() as resources:
        conn = resources.enter_context(
            connect(target.url, autocommit=True, lock_timeout=ctx.options.lock_timeout)
        )
        run = Run(ctx, request, catalog, entry, migration, statements, conn, resources, now)
        run.backup_progress = backup_progress
        for step in DRY_RUN if request.dry_run else ROLL_BACK:
            perform_step(run, step)
    return result_of(run)


def perform_step(run: Run, step: Step) -> None:
    """Run ``step``, keep what it made and record that it completed; a failure is noted."""
    try:
        made = step.run(run)
    except BaseException as exc:  # the timeline says what failed, whatever it was
        if step.failure is not None:
            run.note(failure_note(step.failure, exc, committed="roll back" in run.completed))
        raise
    run.made = run.made.merged(made)
    run.completed.append(step.name)


def failure_note(stage: str, exc: BaseException, *, committed: bool = False) -> str:
    """The timeline entry of a failed stage (``committed``: after the rollback committed)."""
    if isinstance(exc, KeyboardInterrupt):
        what = "interrupted"
    elif isinstance(exc, BackoutError):
        what = exc.message
    else:
        what = f"internal error: {type(exc).__name__}: {exc}"
    if stage == "rollback":
        return f"rollback FAILED: {what}"
    if committed:
        return f"{stage} FAILED: {what}; the rollback was committed before it"
    return f"{stage} FAILED: {what}; nothing was rolled back"


def _check_request(request: Request) -> None:
    if request.severity not in SEVERITIES:
        raise UsageError(f"unknown severity {request.severity!r}", hint="use SEV1 to SEV4")
    if request.no_backup and not (request.backup_waiver or "").strip():
        raise UsageError("--no-backup needs --backup-waiver saying why no backup is needed")
