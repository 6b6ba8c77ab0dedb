"""What the commands that run something on a database share: the target their connection
options name, the run options, who operates, the confirmation prompt, progress lines on stderr,
and printing the outcome."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from backout.cli import render, render_operations
from backout.cli.application import state
from backout.cli.options import Connection, Limits, Locks
from backout.database.connection import (
    MAX_LOCK_WAIT,
    MAX_STATEMENT_TIMEOUT,
    Target,
    parse_limit,
    resolve_target,
)
from backout.database.runner import RunOptions
from backout.errors import ExitCode, RefusedError
from backout.git import operator_identity
from backout.operations.approval import Operator
from backout.operations.operation import Confirm, Outcome, Plan


def target_of(ctx: typer.Context, connection: Connection) -> Target:
    return resolve_target(
        state(ctx).settings,
        os.environ,
        database_url=connection.database_url,
        env_name=connection.env,
    )


def run_options(locks: Locks) -> RunOptions:
    """The lock and statement options as durations: each at least 1ms (0 would mean no limit)
    and at most 1h for lock waits, 24h for a statement; anything else is a usage error."""
    statement = locks.statement_timeout if isinstance(locks, Limits) else None
    return RunOptions(
        lock_wait=parse_limit(locks.lock_wait, option="--lock-wait", maximum=MAX_LOCK_WAIT),
        lock_timeout=parse_limit(
            locks.lock_timeout, option="--lock-timeout", maximum=MAX_LOCK_WAIT
        ),
        lock_retries=locks.lock_retries,
        max_queued=locks.max_queued,
        statement_timeout=None
        if statement is None
        else parse_limit(statement, option="--statement-timeout", maximum=MAX_STATEMENT_TIMEOUT),
    )


def operator_of(approved_by: str | None, reason: str | None) -> Operator:
    return Operator(operator_identity(Path.cwd(), os.environ), approved_by, reason)


# What the prompt asks the operator to confirm, as a verb: "Type 005 to roll back ...".
_VERBS = {
    "apply": "apply up to",
    "baseline": "mark as applied up to",
    "rollback": "roll back",
    "emergency": "roll back",
}


def confirmable(yes: bool, what: str, where: str) -> None:
    """Refuse at once what would need a confirmation nobody can type: no ``--yes`` and no
    terminal (checked before slow work, not after it)."""
    if not yes and not sys.stdin.isatty():
        raise RefusedError(
            f"{what} on {where} needs confirmation and this is not a terminal",
            hint="pass --yes to confirm",
        )


def confirmer(yes: bool) -> Confirm:
    """``--yes``; or, on a terminal, the plan and a typed confirmation; otherwise refuse."""

    def confirm(plan: Plan) -> bool:
        confirmable(yes, plan.action, plan.target.name)
        if yes:
            return True
        typer.echo(render_operations.plan_text(plan), err=True)
        typed = typer.prompt(prompt(plan), err=True)
        return str(typed).strip() == plan.confirm_word

    return confirm


def prompt(plan: Plan) -> str:
    """``Type 005 to roll back 005_backfill on production`` (typer adds the colon)."""
    last = plan.names[-1] if plan.names else ""
    verb = _VERBS.get(plan.action, plan.action.replace("_", " "))
    return f"Type {plan.confirm_word} to {verb} {last} on {plan.target.name}"


def progress(line: str) -> None:
    typer.echo(line, err=True)


def echo_outcome(outcome: Outcome, *, dry_run: bool, json_output: bool) -> int:
    """Print the outcome; the exit code: 3 when a smoke check failed after the change."""
    if json_output:
        typer.echo(render.to_json(render_operations.outcome_json(outcome, dry_run=dry_run)))
    else:
        typer.echo(render_operations.outcome_text(outcome, dry_run=dry_run))
    return ExitCode.PROBLEMS if any(not r.ok for r in outcome.smoke) else ExitCode.OK
