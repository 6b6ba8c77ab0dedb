"""``backout check``: the staging validation checklist of one migration, as a report."""

from __future__ import annotations

from typing import Any

import typer

from backout.cli import render
from backout.cli.application import state
from backout.cli.operation import target_of
from backout.cli.options import Connection, JsonFlag, MigrationArg, option_groups
from backout.errors import ExitCode
from backout.operations.staging_check import Checklist, markdown, staging_check


@option_groups
def check(
    ctx: typer.Context,
    migration: MigrationArg,
    *,
    connection: Connection,
    json_output: JsonFlag = False,
) -> int:
    """The staging checklist: applied, indexes valid, constraints probed, triggers enabled, key
    queries within budget, rollback rehearsed, breaking changes. Exit 3 when a check fails."""
    st = state(ctx)
    checklist = staging_check(st.settings, target_of(ctx, connection), migration, st.cwd)
    if json_output:
        typer.echo(render.to_json(_json(checklist)))
    else:
        typer.echo(markdown(checklist), nl=False)
    return ExitCode.PROBLEMS if checklist.failed else ExitCode.OK


def _json(checklist: Checklist) -> dict[str, Any]:
    return {
        "migration": checklist.migration,
        "environment": checklist.environment,
        "ok": not checklist.failed,
        "items": [
            {"check": i.what, "status": i.status, "evidence": i.evidence} for i in checklist.items
        ],
    }
