"""``backout demo``: the emergency procedure end to end on a throwaway set-up."""

from __future__ import annotations

import typer

from backout.cli.app import app


@app.command()
def demo() -> None:
    """Play an incident on the sample migrations and an embedded PostgreSQL, in a temporary
    folder: apply, then `emergency` on 006, then print the postmortem and the review deadline."""
    from backout import demo as playbook  # imports backout.cli: only when the demo runs

    code = playbook.run()
    if code:
        raise typer.Exit(code)
