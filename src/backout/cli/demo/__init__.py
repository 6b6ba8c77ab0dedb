"""``backout demo`` (what ``make demo`` runs): the emergency procedure end to end, on a throwaway
set-up. The command is here; :mod:`.playbook` plays the incident, :mod:`.sandbox` makes the
temporary project and database, :mod:`.checks` checks what the emergency left behind."""

from __future__ import annotations

import contextlib
import sys
from typing import Annotated

import typer

from backout.cli import render
from backout.cli.demo import playbook


def demo(
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print the checks as JSON; the narrative goes to stderr."),
    ] = False,
) -> None:
    """Play an incident on the sample migrations and an embedded PostgreSQL, in a temporary
    folder: apply, then `emergency` on 006, then print the postmortem and the review deadline."""
    if not json_output:
        code = playbook.run()
    else:
        results: list[tuple[str, bool]] = []
        with contextlib.redirect_stdout(sys.stderr):
            code = playbook.run(lambda line: print(line, file=sys.stderr), results)
        typer.echo(
            render.to_json(
                {"ok": code == 0, "checks": [{"check": t, "ok": ok} for t, ok in results]}
            )
        )
    if code:
        raise typer.Exit(code)
