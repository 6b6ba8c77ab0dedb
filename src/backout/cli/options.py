"""Options and helpers shared by the commands that connect to a database."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from backout.cli import render
from backout.cli.app import state
from backout.database.connection import Target, parse_duration, resolve_target
from backout.database.runner import RunOptions
from backout.errors import ExitCode, RefusedError
from backout.git import operator_identity
from backout.operations.approval import Operator
from backout.operations.operation import Confirm, Outcome, Plan

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Database URL (else --env, else DATABASE_URL)."),
]
EnvName = Annotated[
    str | None, typer.Option("--env", help="A configured environment: its URL and rules.")
]
JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print JSON with stable keys, nothing else.")
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Confirm without a prompt.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would run; change nothing.")]
ApprovedBy = Annotated[
    str | None, typer.Option("--approved-by", help="Who approved (environments that require it).")
]
Reason = Annotated[str | None, typer.Option("--reason", help="Why; recorded in the audit trail.")]
SkipRehearsal = Annotated[
    str | None,
    typer.Option(
        "--skip-rehearsal",
        metavar="REASON",
        help="On an environment that requires approval: do not rehearse first (audited).",
    ),
]
LockWait = Annotated[
    str, typer.Option("--lock-wait", help="How long to wait for another backout run.")
]
LockTimeout = Annotated[
    str, typer.Option("--lock-timeout", help="How long a statement may wait for a table lock.")
]
LockRetries = Annotated[
    int, typer.Option("--lock-retries", min=0, help="Retries after a lock timeout.")
]
StatementTimeout = Annotated[
    str | None, typer.Option("--statement-timeout", help="Longest a statement may run.")
]


def target_of(ctx: typer.Context, database_url: str | None, env: str | None) -> Target:
    return resolve_target(state(ctx).settings, os.environ, database_url=database_url, env_name=env)


def run_options(wait: str, timeout: str, retries: int, statement: str | None) -> RunOptions:
    return RunOptions(
        lock_wait=parse_duration(wait, option="--lock-wait"),
        lock_timeout=parse_duration(timeout, option="--lock-timeout"),
        lock_retries=retries,
        statement_timeout=parse_duration(statement, option="--statement-timeout")
        if statement
        else None,
    )


def operator_of(approved_by: str | None, reason: str | None) -> Operator:
    return Operator(operator_identity(Path.cwd(), os.environ), approved_by, reason)


def confirmer(yes: bool) -> Confirm:
    """``--yes``; or, on a terminal, the plan and a typed confirmation; otherwise refuse."""

    def confirm(plan: Plan) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise RefusedError(
                f"{plan.action} on {plan.target.name} needs confirmation and this is not a "
                "terminal",
                hint="pass --yes to confirm",
            )
        typer.echo(render.plan_text(plan), err=True)
        typed = typer.prompt(f"Type {plan.confirm_word} to {plan.action}", err=True)
        return str(typed).strip() == plan.confirm_word

    return confirm


def progress(line: str) -> None:
    typer.echo(line, err=True)


def echo_outcome(outcome: Outcome, *, dry_run: bool, json_output: bool) -> int:
    """Print the outcome; the exit code: 3 when a smoke check failed after the change."""
    if json_output:
        typer.echo(render.to_json(render.outcome_json(outcome, dry_run=dry_run)))
    else:
        typer.echo(render.outcome_text(outcome, dry_run=dry_run))
    return ExitCode.PROBLEMS if any(not r.ok for r in outcome.smoke) else ExitCode.OK
