"""Options that several commands take, each declared once, with its help.

A single option is an ``Annotated`` type (``json_output: JsonFlag = False``). Options that go
together are a frozen dataclass of such fields: :class:`Connection` (``--database-url``,
``--env``), :class:`Locks` and :class:`Limits` (``--lock-wait``, ``--lock-timeout``,
``--lock-retries``, ``--max-queued``, ``--statement-timeout``). A command decorated with
:func:`option_groups` takes the dataclass as one parameter; typer sees its fields as the
command's own options, in that place, so ``--help`` lists them as if they were spelled out.

Nothing here imports the core: :mod:`backout.cli.operation` turns these into a target and run
options, for the commands that connect.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_type_hints

import typer

R = TypeVar("R")

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print JSON with stable keys, nothing else.")
]
MigrationArg = Annotated[
    str, typer.Argument(metavar="MIGRATION", help="Version (004), name or path.")
]
To = Annotated[
    str | None, typer.Option("--to", metavar="MIGRATION", help="Stop after this migration.")
]
RollbackFile = Annotated[
    Path | None, typer.Option("--rollback-file", metavar="FILE", help="Run this SQL file instead.")
]
UseCurrentRollback = Annotated[
    bool,
    typer.Option("--use-current-rollback", help="Accept a ROLLBACK section edited since."),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Confirm without a prompt.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would run; change nothing.")]
ApprovedBy = Annotated[
    str | None,
    typer.Option(
        "--approved-by", metavar="NAME", help="Who approved (environments that require it)."
    ),
]
Reason = Annotated[
    str | None, typer.Option("--reason", metavar="TEXT", help="Why; recorded in the audit trail.")
]
SkipRehearsal = Annotated[
    str | None,
    typer.Option(
        "--skip-rehearsal",
        metavar="REASON",
        help="On an environment that requires approval: do not rehearse first (audited).",
    ),
]
AcceptDamage = Annotated[
    bool,
    typer.Option(
        "--accept-damage",
        help="Go ahead although the rollback removes objects other applied migrations created "
        "(recorded in the audit row and the postmortem).",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url", metavar="URL", help="Database URL (else --env, else DATABASE_URL)."
    ),
]
EnvName = Annotated[
    str | None,
    typer.Option("--env", metavar="NAME", help="A configured environment: its URL and rules."),
]
LockWait = Annotated[
    str,
    typer.Option(
        "--lock-wait",
        metavar="DURATION",
        help="How long to wait for another backout run (1ms to 1h).",
    ),
]
LockTimeout = Annotated[
    str,
    typer.Option(
        "--lock-timeout",
        metavar="DURATION",
        help="How long a statement may wait for a table lock (1ms to 1h).",
    ),
]
MAX_LOCK_RETRIES = 100
LockRetries = Annotated[
    int,
    typer.Option(
        "--lock-retries",
        min=0,
        max=MAX_LOCK_RETRIES,
        help=f"Retries after a lock timeout (0 to {MAX_LOCK_RETRIES}).",
    ),
]
MAX_QUEUED = 10_000
MaxQueued = Annotated[
    int,
    typer.Option(
        "--max-queued",
        min=0,
        max=MAX_QUEUED,
        help="Stop waiting for a table lock, and retry later, when more sessions than this "
        f"are queued behind backout (0: never; at most {MAX_QUEUED}).",
    ),
]
StatementTimeout = Annotated[
    str | None,
    typer.Option(
        "--statement-timeout",
        metavar="DURATION",
        help="Longest each documented statement may run (1ms to 24h; not backout's own).",
    ),
]


@dataclass(frozen=True)
class Connection:
    """Which database, and which configured environment's rules apply to it."""

    database_url: DatabaseUrl = None
    env: EnvName = None


TargetsFile = Annotated[
    Path | None,
    typer.Option(
        "--targets",
        metavar="FILE",
        help="Many databases: a file of `name url` lines ($VAR reads a URL from the environment).",
    ),
]
FleetName = Annotated[
    str | None,
    typer.Option("--fleet", metavar="NAME", help="Many databases: a configured fleet."),
]
Shard = Annotated[
    str | None,
    typer.Option(
        "--shard", metavar="I/N", help="Only the I-th of N slices of the fleet (a CI matrix job)."
    ),
]
Waves = Annotated[
    str | None,
    typer.Option(
        "--waves",
        metavar="SIZES",
        help="After the canary, wave sizes: counts, percentages, 'rest' (default: 10%,rest).",
    ),
]
MAX_CONCURRENCY = 64
Concurrency = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        min=1,
        max=MAX_CONCURRENCY,
        help=f"Targets worked on at once within a wave (default 4; at most {MAX_CONCURRENCY}).",
    ),
]


@dataclass(frozen=True)
class Fleet:
    """Many databases instead of one: a targets file or a configured fleet, and a slice of it."""

    targets: TargetsFile = None
    fleet: FleetName = None
    shard: Shard = None


@dataclass(frozen=True)
class Rollout(Fleet):
    """A fleet, and how a change rolls out across it: waves after a canary, at most so many
    targets at once."""

    waves: Waves = None
    concurrency: Concurrency = None


@dataclass(frozen=True)
class Locks:
    """How long to wait for another backout run and for table locks, how often to retry, and
    how many sessions may queue behind backout's lock request before it stops waiting."""

    lock_wait: LockWait = "30s"
    lock_timeout: LockTimeout = "5s"
    lock_retries: LockRetries = 5
    max_queued: MaxQueued = 5


@dataclass(frozen=True)
class Limits(Locks):
    """The lock options, and how long one statement may run."""

    statement_timeout: StatementTimeout = None


# Every parameter becomes keyword-only: a group's required field (no default) may then follow
# options that have one, and typer passes everything by name anyway.
_KEYWORD = inspect.Parameter.KEYWORD_ONLY


def option_groups(command: Callable[..., R]) -> Callable[..., R]:
    """``command`` as typer should see it: each parameter typed with an option dataclass is
    replaced, in its place, by the dataclass's fields; the command receives the dataclass."""
    hints = get_type_hints(command, include_extras=True)
    groups = {
        name: kind
        for name, kind in hints.items()
        if name != "return" and isinstance(kind, type) and dataclasses.is_dataclass(kind)
    }
    parameters: list[inspect.Parameter] = []
    for parameter in inspect.signature(command).parameters.values():
        if parameter.name in groups:
            parameters += _fields(groups[parameter.name])
        else:
            annotation = hints.get(parameter.name, parameter.annotation)
            parameters.append(parameter.replace(kind=_KEYWORD, annotation=annotation))
    names = [p.name for p in parameters]
    if len(set(names)) != len(names):
        raise TypeError(f"{command.__name__}: an option group repeats a parameter: {names}")

    @functools.wraps(command)
    def with_groups(**options: Any) -> R:
        for name, group in groups.items():
            fields = dataclasses.fields(group)
            options[name] = group(**{f.name: options.pop(f.name) for f in fields})
        return command(**options)

    with_groups.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    with_groups.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_groups


def _fields(group: type[Any]) -> list[inspect.Parameter]:
    """The dataclass's fields as keyword parameters, with their ``Annotated`` types and defaults."""
    hints = get_type_hints(group, include_extras=True)
    return [
        inspect.Parameter(
            f.name,
            _KEYWORD,
            default=inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default,
            annotation=hints[f.name],
        )
        for f in dataclasses.fields(group)
    ]
