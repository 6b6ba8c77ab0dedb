"""``backout demo`` (what ``make demo`` runs): the emergency procedure end to end, on a throwaway
set-up. The command is here; :mod:`.playbook` plays the incident, :mod:`.sandbox` makes the
temporary project and database, :mod:`.checks` checks what the emergency left behind."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Annotated

import typer

from backout.cli import render
from backout.cli.demo import playbook


def demo(
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print the checks as JSON; the narrative goes to stderr."),
    ] = False,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Play nothing: start the embedded PostgreSQL, print its URL, and keep it "
            "running until Ctrl-C (a database to try the commands on).",
        ),
    ] = False,
) -> None:
    """Play an incident on the sample migrations and an embedded PostgreSQL, in a temporary
    folder: apply, then `emergency` on 006, then print the postmortem and the review deadline."""
    if serve:
        serve_until_stopped(json_output)
        return
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


def serve_until_stopped(json_output: bool) -> None:
    """The embedded server's URL on stdout (one line, or ``{"url": ...}``), then wait for
    Ctrl-C or SIGTERM; the server stops and its data is deleted on the way out."""
    from backout.database.embedded import embedded_postgres

    stop = threading.Event()
    with embedded_postgres() as url:
        typer.echo(render.to_json({"url": url}) if json_output else url)
        sys.stdout.flush()
        typer.echo("backout: the server runs until Ctrl-C; its data goes with it", err=True)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.wait(1):
            pass
    typer.echo("backout: the server stopped", err=True)
