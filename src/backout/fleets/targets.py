"""A fleet's targets: named database URLs, from a targets file or a configured fleet.

A targets file holds one target per line, ``name url`` or just ``url``; ``#`` starts a comment
(at the start of a line or after a space); blank lines are skipped. A URL written as ``$VAR`` or
``${VAR}`` is read from that environment variable, so the file itself holds no password. A target
without a name is named after its host and database (as a single database is), and names must be
unique within the fleet: they name the target's backup folder, audit details and timeline lines.

Nothing here prints a URL: every message names the file, the line and the target, and a URL
that reaches one goes through :func:`backout.redaction.redact`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from backout.config import FleetConfig, Settings
from backout.database.connection import Target, checked_url
from backout.errors import UsageError

DEFAULT_CONCURRENCY = 4
DEFAULT_WAVES = ("10%", "rest")
"""After the canary: a wave of a tenth of the fleet, then the rest."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_VARIABLE = re.compile(
    r"^\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))$"
)
_COMMENT = re.compile(r"(?:^|\s)#.*$")
_SHARD = re.compile(r"^\s*(?P<index>\d+)\s*/\s*(?P<count>\d+)\s*$")


@dataclass(frozen=True)
class Fleet:
    """The databases one command works on, and how it rolls out across them."""

    name: str
    """The fleet's name (``--fleet``), or the targets file's name (``--targets``)."""
    targets: tuple[Target, ...]
    waves: tuple[str, ...] = DEFAULT_WAVES
    concurrency: int = DEFAULT_CONCURRENCY
    require_approval: bool = False
    shard: tuple[int, int] | None = None
    """``--shard I/N``: this run holds the I-th of N slices (1-based)."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.targets)


def read_targets(text: str, source: str, environ: Mapping[str, str]) -> tuple[Target, ...]:
    """The targets ``text`` lists (``source`` names it in messages: a file, or the fleet)."""
    targets: list[Target] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        target = _target(line, f"{source}:{number}", environ)
        if target.name in seen:
            raise UsageError(
                f"{source}:{number}: target {target.name!r} is already named on line "
                f"{seen[target.name]}",
                hint="give each target its own name: `name url`",
            )
        seen[target.name] = number
        targets.append(target)
    if not targets:
        raise UsageError(f"{source} lists no targets", hint="write one `name url` per line")
    return tuple(targets)


def _target(line: str, where: str, environ: Mapping[str, str]) -> Target:
    words = line.split()
    if len(words) > 2:
        raise UsageError(
            f"{where}: expected `name url` or `url`, found {len(words)} words",
            hint="a URL holds no space; percent-encode one in a password as %20",
        )
    name, written = (words[0], words[1]) if len(words) == 2 else (None, words[0])
    if name is not None and ("=" in name or "://" in name):
        raise UsageError(
            f"{where}: the first of two words is the target's name, and this one is part of "
            "a connection string or URL",
            hint="write `name url`, the URL as postgresql://... or $VAR "
            "(a key=value connection string holds spaces: put it in a variable as a URL)",
        )
    url = checked_url(_url(written, where, environ), where)
    target = Target(url, label=name)
    label = name if name is not None else target.name.replace("/", "-")
    if not _NAME.match(label):
        raise UsageError(
            f"{where}: {label!r} cannot name a target",
            hint="use letters, digits, '_', '-' and '.', starting with a letter or digit",
        )
    return Target(url, label=label)


def _url(written: str, where: str, environ: Mapping[str, str]) -> str:
    """The URL as written, or read from the environment variable ``$VAR`` names."""
    if not written.startswith("$"):
        return written
    match = _VARIABLE.match(written)
    if match is None:
        raise UsageError(
            f"{where}: {written!r} is not an environment variable",
            hint="write $VAR or ${VAR}, VAR made of letters, digits and '_'",
        )
    variable = match["braced"] or match["bare"]
    url = environ.get(variable)
    if not url:
        raise UsageError(
            f"{where}: the URL comes from ${variable}, which is not set",
            hint=f"export {variable}=postgresql://...",
        )
    return url


def address(url: str) -> str:
    """Where a target is, for people: ``host:port/dbname`` (``local`` for a Unix socket),
    never a user name or password."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        return "(an unreadable URL)"
    host = str(params.get("host") or "local")
    host = "local" if host.startswith("/") else host
    port = f":{params['port']}" if params.get("port") else ""
    return f"{host}{port}/{params.get('dbname') or ''}"


def load_targets_file(path: Path, environ: Mapping[str, str]) -> tuple[Target, ...]:
    """The targets a file lists."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: targets file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the targets file: {exc}") from None
    return read_targets(text, str(path), environ)


def configured_fleet(settings: Settings, name: str, environ: Mapping[str, str]) -> Fleet:
    """The fleet ``[tool.backout.fleets.<name>]`` configures."""
    config = settings.fleets.get(name)
    if config is None:
        known = ", ".join(sorted(settings.fleets)) or "none"
        raise UsageError(
            f"unknown fleet {name!r}",
            hint=f"configured fleets: {known}; add [tool.backout.fleets.<name>] with targets",
        )
    targets = _configured_targets(config, environ)
    return Fleet(
        name,
        targets,
        waves=config.waves or DEFAULT_WAVES,
        concurrency=config.concurrency or DEFAULT_CONCURRENCY,
        require_approval=config.require_approval,
    )


def _configured_targets(config: FleetConfig, environ: Mapping[str, str]) -> tuple[Target, ...]:
    if config.targets_file is not None:
        return load_targets_file(config.targets_file, environ)
    return read_targets("\n".join(config.lines), f"fleet {config.name}", environ)


def fleet_from(
    settings: Settings,
    environ: Mapping[str, str],
    *,
    targets_file: Path | None = None,
    fleet_name: str | None = None,
    shard: str | None = None,
) -> Fleet | None:
    """``--targets FILE`` or ``--fleet NAME`` (one of them), sliced by ``--shard I/N``; None
    when neither was given (the command works on one database)."""
    if targets_file is not None and fleet_name is not None:
        raise UsageError("both --targets and --fleet were given", hint="give one of them")
    if targets_file is not None:
        fleet = Fleet(targets_file.stem, load_targets_file(targets_file, environ))
    elif fleet_name is not None:
        fleet = configured_fleet(settings, fleet_name, environ)
    elif shard is not None:
        raise UsageError("--shard needs a fleet", hint="add --targets FILE or --fleet NAME")
    else:
        return None
    return sliced(fleet, parse_shard(shard)) if shard is not None else fleet


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``: the second of four slices."""
    match = _SHARD.match(text)
    index, count = (int(match["index"]), int(match["count"])) if match else (0, 0)
    if not 1 <= index <= count:
        raise UsageError(
            f"--shard {text!r} is not a slice I/N", hint="e.g. --shard 1/4 ... --shard 4/4"
        )
    return index, count


def shard_of(names: Sequence[str], index: int, count: int) -> tuple[str, ...]:
    """The names in slice ``index`` of ``count``: every ``count``-th target in name order,
    starting at the ``index``-th. The slices cover every name exactly once, differ in size by
    at most one, and depend only on the names, never on the order the file lists them in."""
    ordered = sorted(names)
    return tuple(ordered[index - 1 :: count])


def sliced(fleet: Fleet, shard: tuple[int, int]) -> Fleet:
    """``fleet`` with only the targets of one slice (in the fleet's own order); refused when
    the fleet has fewer targets than slices (a slice would hold none, and a merge would wait
    for its part forever)."""
    if shard[1] > len(fleet.targets):
        raise UsageError(
            f"--shard {shard[0]}/{shard[1]}: fleet {fleet.name} has {len(fleet.targets)} "
            f"targets, fewer than {shard[1]} slices",
            hint=f"use at most {len(fleet.targets)} slices",
        )
    mine = set(shard_of(fleet.names, *shard))
    targets = tuple(t for t in fleet.targets if t.name in mine)
    return Fleet(
        fleet.name,
        targets,
        waves=fleet.waves,
        concurrency=fleet.concurrency,
        require_approval=fleet.require_approval,
        shard=shard,
    )
