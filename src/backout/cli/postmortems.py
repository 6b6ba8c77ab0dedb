"""``backout postmortems ...``: review deadlines, states and action items, for leads.

Each command reads the postmortems (and, with ``--all-branches``, those only on branches),
calls the core, renders. The clock is read once, here, and passed down.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from backout import git
from backout.cli import render
from backout.cli import render_postmortems as show_pm
from backout.cli.application import app, state
from backout.cli.migrations import LintFormat, echo_report
from backout.config import CACHE_FOLDER, Settings
from backout.errors import ExitCode, UsageError
from backout.git import operator_identity
from backout.postmortems.collection import Collection, Record, find, load, rewrite
from backout.postmortems.filters import Filters, select
from backout.postmortems.model import STATES

WEBHOOK_ENV = "BACKOUT_REMIND_WEBHOOK"


class DigestFormat(StrEnum):
    MARKDOWN = "markdown"
    JSON = "json"


postmortems_app = typer.Typer(
    name="postmortems",
    help="Review deadlines, states and action items of the postmortems in ops/postmortems.",
    no_args_is_help=True,
)
app.add_typer(postmortems_app)

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print JSON with stable keys, nothing else.")
]
AllBranches = Annotated[
    bool,
    typer.Option(
        "--all-branches", help="Also read postmortems that exist only on local or remote branches."
    ),
]
Status = Annotated[
    list[str] | None,
    typer.Option("--status", metavar="STATE", help=f"Only these states ({', '.join(STATES)})."),
]
Owner = Annotated[
    str | None, typer.Option("--owner", metavar="NAME", help="Only those this person owns.")
]
Overdue = Annotated[bool, typer.Option("--overdue", help="Only overdue reviews or items.")]
DueWithin = Annotated[
    str | None,
    typer.Option(
        "--due-within", metavar="DURATION", help="Only a deadline within this time: 24h, 7d."
    ),
]
SeverityOpt = Annotated[
    list[str] | None, typer.Option("--severity", metavar="SEVERITY", help="Only SEV1..SEV4.")
]


def _now() -> datetime:
    return datetime.now(UTC)


def _collection(settings: Settings, all_branches: bool) -> Collection:
    cache = settings.root / CACHE_FOLDER / "postmortems.json"
    return load(settings.postmortems, all_branches=all_branches, cache=cache)


def _filters(
    status: list[str] | None,
    owner: str | None,
    overdue: bool,
    due_within: str | None,
    severity: list[str] | None,
) -> Filters:
    for s in status or ():
        if s not in STATES:
            raise UsageError(f"unknown status {s!r}", hint=f"use one of {', '.join(STATES)}")
    return Filters(
        statuses=tuple(status or ()),
        owner=owner,
        severities=tuple(s.upper() for s in severity or ()),
        overdue=overdue,
        due_within=_span(due_within, "--due-within") if due_within else None,
    )


def _span(text: str, option: str) -> timedelta:
    """``24h``, ``7d``, ``90m``, ``2w`` as a duration."""
    value = text.strip().lower()
    for suffix, unit in (("w", 7 * 86400), ("d", 86400)):
        if value.endswith(suffix) and value[:-1].strip().replace(".", "", 1).isdigit():
            return timedelta(seconds=float(value[:-1]) * unit)
    from backout.database.connection import parse_duration  # not at start-up: psycopg is slow

    return timedelta(seconds=parse_duration(value, option=option, examples="24h, 7d or 2w"))


def _warn_broken(collection: Collection, settings: Settings) -> None:
    for b in collection.broken:
        where = f" (on branch {b.branch})" if b.branch else ""
        typer.echo(
            f"backout: warning: {settings.relative(b.path)}:{b.line}: {b.message}{where}",
            err=True,
        )


@postmortems_app.command("list")
def list_(
    ctx: typer.Context,
    status: Status = None,
    owner: Owner = None,
    overdue: Overdue = False,
    due_within: DueWithin = None,
    severity: SeverityOpt = None,
    all_branches: AllBranches = False,
    fail_on_overdue: Annotated[
        bool, typer.Option("--fail-on-overdue", help="Exit 3 when any listed one is overdue.")
    ] = False,
    json_output: JsonFlag = False,
) -> int:
    """The postmortems, most urgent first, with their review deadlines and open action items."""
    settings = state(ctx).settings
    now = _now()
    collection = _collection(settings, all_branches)
    chosen = select(collection.records, _filters(status, owner, overdue, due_within, severity), now)
    _warn_broken(collection, settings)
    if json_output:
        typer.echo(render.to_json(show_pm.list_json(chosen, collection, now, settings.relative)))
    else:
        typer.echo(show_pm.list_text(chosen, now, settings.relative))
    if fail_on_overdue and any(r.pm.overdue(now) for r in chosen):
        return ExitCode.PROBLEMS
    return ExitCode.OK


@postmortems_app.command()
def show(
    ctx: typer.Context,
    incident: Annotated[
        str, typer.Argument(metavar="INCIDENT", help="The incident id: INC-20261124-01.")
    ],
    all_branches: AllBranches = False,
    json_output: JsonFlag = False,
) -> None:
    """One postmortem: its front matter, deadline, action items and state history."""
    settings = state(ctx).settings
    now = _now()
    record = find(_collection(settings, all_branches), incident)
    if json_output:
        typer.echo(render.to_json(show_pm.record_json(record, now, settings.relative)))
    else:
        typer.echo(show_pm.record_text(record, now, settings.relative))


@postmortems_app.command("set-status")
def set_status(
    ctx: typer.Context,
    incident: Annotated[str, typer.Argument(help="The incident id.")],
    new_status: Annotated[str, typer.Argument(metavar="STATUS", help=" -> ".join(STATES[:5]))],
    by: Annotated[
        str | None, typer.Option("--by", metavar="NAME", help="Who (default: your git identity).")
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", metavar="TEXT", help="Why (needed for not_required and --force)."),
    ] = None,
    commit: Annotated[bool, typer.Option("--commit", help="Commit the file alone.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Mark it reviewed although TODO placeholders remain (needs --reason)."
        ),
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Move a postmortem to another state; the change is recorded in its front matter."""
    from backout.postmortems.states import change_status

    st = state(ctx)
    settings = st.settings
    record = find(_collection(settings, all_branches=False), incident)
    who = by or operator_identity(st.cwd, os.environ)
    front = change_status(
        record,
        new_status,
        by=who,
        at=_now(),
        reason=reason,
        stub_left=_stub_left(settings, record),
        force=force,
    )
    rewrite(record, front)
    sha = None
    if commit:
        sha = git.commit_file(
            record.path, f"{record.pm.id}: postmortem {record.pm.status} -> {new_status}"
        )
        if sha is None:
            typer.echo("backout: warning: not a git repository; nothing was committed", err=True)
    _echo_change(record, new_status, who, settings.relative(record.path), sha, json_output)


def _echo_change(
    record: Record, new_status: str, who: str, shown: str, sha: str | None, json_output: bool
) -> None:
    if json_output:
        change = {"from": record.pm.status, "to": new_status, "by": who, "path": shown}
        typer.echo(render.to_json({"id": record.pm.id, **change, "commit": sha}))
        return
    typer.echo(f"{record.pm.id}: {record.pm.status} -> {new_status} ({shown})")
    if sha:
        typer.echo(f"committed {sha[:12]}")


def _stub_left(settings: Settings, record: Record) -> bool:
    fix_forward = record.pm.fix_forward
    if not fix_forward:
        return False
    path = settings.root / fix_forward
    if not path.is_file():
        return False
    from backout.migrations.file import read_migration  # only here: pglast is slow to load

    try:
        return read_migration(path).is_stub
    except Exception:  # a file that cannot be read is not a finished migration either
        return True


@postmortems_app.command("check")
def check_(
    ctx: typer.Context,
    all_branches: AllBranches = False,
    output_format: Annotated[
        LintFormat, typer.Option("--format", "-f", help="text, json or github (annotations).")
    ] = LintFormat.TEXT,
    json_output: JsonFlag = False,
) -> int:
    """Check the postmortems for CI: front matter, ids, fields, placeholders, deadlines."""
    from backout.postmortems.checks import check

    settings = state(ctx).settings
    report = check(_collection(settings, all_branches), _now())
    return echo_report(report, output_format, json_output=json_output, display=settings.relative)


@postmortems_app.command()
def calendar(
    ctx: typer.Context,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write the .ics here (default: stdout)."
        ),
    ] = None,
    status: Status = None,
    owner: Owner = None,
    overdue: Overdue = False,
    due_within: DueWithin = None,
    severity: SeverityOpt = None,
    all_branches: AllBranches = False,
    json_output: JsonFlag = False,
) -> None:
    """An iCalendar file: one event per open review deadline and action item."""
    settings = state(ctx).settings
    now = _now()
    collection = _collection(settings, all_branches)
    chosen = select(collection.records, _filters(status, owner, overdue, due_within, severity), now)
    from backout.postmortems import calendar as calendar_feed

    data = calendar_feed.calendar(chosen, now)
    if output is None and not json_output:
        typer.echo(data.decode(), nl=False)
        return
    if output is not None:
        output.write_bytes(data)
    events = data.count(b"BEGIN:VEVENT")
    if json_output:
        typer.echo(
            render.to_json(
                {
                    "path": str(output) if output else None,
                    "events": events,
                    "ics": None if output else data.decode(),
                }
            )
        )
    else:
        typer.echo(f"{events} event(s) written to {output}")


@postmortems_app.command("digest")
def digest_(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option("--since", metavar="DURATION", help="The period: 7d, 24h, 2w.")
    ] = "7d",
    output_format: Annotated[
        DigestFormat, typer.Option("--format", "-f", help="markdown or json.")
    ] = DigestFormat.MARKDOWN,
    all_branches: AllBranches = False,
    json_output: JsonFlag = False,
) -> None:
    """What a lead posts weekly: opened, reviewed, closed; overdue now; due this week."""
    from backout.postmortems import digest

    settings = state(ctx).settings
    now = _now()
    summary = digest.digest(
        _collection(settings, all_branches).records, now - _span(since, "--since"), now
    )
    if json_output or output_format is DigestFormat.JSON:
        typer.echo(render.to_json(show_pm.digest_json(summary, settings.relative)))
    else:
        typer.echo(digest.markdown(summary), nl=False)


@postmortems_app.command()
def remind(
    ctx: typer.Context,
    webhook: Annotated[
        str | None,
        typer.Option(
            "--webhook",
            metavar="URL",
            help=f"Where to post (default: ${WEBHOOK_ENV}).",
            show_default=False,
        ),
    ] = None,
    all_branches: AllBranches = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the message; post nothing.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Post what is overdue or due within a day to a webhook (Slack-compatible JSON)."""
    from backout.postmortems import reminders as reminder

    settings = state(ctx).settings
    now = _now()
    payload = reminder.message(_collection(settings, all_branches).records, now)
    url = webhook or os.environ.get(WEBHOOK_ENV, "")
    if dry_run:
        typer.echo(render.to_json(payload) if json_output else payload["text"])
        return
    if not url:
        raise UsageError("no webhook to post to", hint=f"pass --webhook URL or set {WEBHOOK_ENV}")
    status_code = reminder.post(url, payload)
    counts = f"{len(payload['overdue'])} overdue, {len(payload['due_soon'])} due within a day"
    if json_output:
        typer.echo(render.to_json({"status": status_code, **payload}))
    else:
        typer.echo(f"Posted ({counts}); the webhook answered HTTP {status_code}.")


@postmortems_app.command()
def merge(
    ctx: typer.Context,
    incident: Annotated[
        str | None,
        typer.Argument(
            metavar="[INCIDENT]", help="The incident (default: the one with parts to merge)."
        ),
    ] = None,
    no_git: Annotated[bool, typer.Option("--no-git", help="Do not commit anything.")] = False,
    json_output: JsonFlag = False,
) -> int:
    """Fold the parts a fleet emergency's shards wrote into the one postmortem. Exit 3 when a
    shard never reported or a target is left to do."""
    from backout.operations.fleet.merge import merge_parts

    settings = state(ctx).settings
    merged = merge_parts(settings, incident, no_git=no_git, now=_now)
    if json_output:
        typer.echo(render.to_json(show_pm.merged_json(merged, settings.relative)))
    else:
        typer.echo(show_pm.merged_text(merged, settings.relative))
    return merged.exit_code
