"""A shard's part of a fleet incident, and the folding of every part into the one postmortem.

A CI job that runs ``emergency --shard I/N`` cannot write the postmortem: N jobs on N machines
would each write their own. It writes its part instead,
``<postmortems>/<INCIDENT>.parts/shard-I-of-N.json``: the opening facts (as the postmortem's
front matter holds them, with the rollback SQL and its hash), its targets' lines, its timeline
entries with their times and its first commit. :func:`fold` puts parts into a postmortem:
timeline entries in time order without duplicates, each target's line from the newest part
that has it, and which shards reported (kept in the front matter as ``shards``), so folding
the same parts twice changes nothing. Pure but for reading and writing the part files.
"""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backout.errors import UsageError
from backout.postmortems.file import write_atomically
from backout.postmortems.front_matter import from_front_matter, moment, to_front_matter
from backout.postmortems.model import Entry, Postmortem

FORMAT = "backout-shard-part/1"
DONE = ("rolled back", "rolled back earlier", "skipped")
"""A target's outcomes that leave nothing to do there."""
_NAME = re.compile(r"^shard-(?P<index>\d+)-of-(?P<count>\d+)\.json$")
_BODY_ONLY = ("rollback_sql", "rollback_sha256", "introduced_by")


@dataclass(frozen=True)
class Part:
    """One shard's part: its slice, its view of the incident, and how far its run got."""

    incident: str
    index: int
    count: int
    pm: Postmortem
    """The opening facts, this shard's targets and timeline, the backups folder."""
    first_commit: datetime | None = None
    audit_event: int | None = None
    """The audit event of the first commit."""
    finished: bool = False
    """The shard's run ended (False: it is running, or it was killed)."""
    updated_at: datetime | None = None
    path: Path | None = None

    @property
    def shard(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def left(self) -> tuple[str, ...]:
        """Its targets with something still to do."""
        return tuple(t.name for t in self.pm.targets if t.outcome not in DONE)


def parts_folder(postmortems: Path, incident: str) -> Path:
    return postmortems / f"{incident}.parts"


def part_path(postmortems: Path, incident: str, index: int, count: int) -> Path:
    return parts_folder(postmortems, incident) / f"shard-{index}-of-{count}.json"


def write_part(path: Path, part: Part) -> None:
    """The part as JSON, atomically: a killed shard leaves the last complete one."""
    front = {**to_front_matter(part.pm), **{k: getattr(part.pm, k) for k in _BODY_ONLY}}
    data = {
        "format": FORMAT,
        "incident": part.incident,
        "shard": {"index": part.index, "count": part.count},
        "finished": part.finished,
        "first_commit": _iso(part.first_commit),
        "audit_event": part.audit_event,
        "updated_at": _iso(part.updated_at),
        "postmortem": front,
    }
    write_atomically(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_part(path: Path) -> Part:
    """The part ``path`` holds; a one-line error when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        front = data["postmortem"]
        pm, _ = from_front_matter(front)
        pm = replace(pm, **{k: front.get(k) for k in _BODY_ONLY}, extra={})
        return Part(
            incident=str(data["incident"]),
            index=int(data["shard"]["index"]),
            count=int(data["shard"]["count"]),
            pm=replace(pm, rollback_sql=str(front.get("rollback_sql") or "")),
            first_commit=moment(data.get("first_commit")),
            audit_event=data.get("audit_event"),
            finished=bool(data.get("finished")),
            updated_at=moment(data.get("updated_at")),
            path=path,
        )
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"{path}: not a shard's part: {exc}",
            hint="a part is written by `backout emergency --shard I/N`; remove this file",
        ) from None


def part_files(folder: Path) -> tuple[Path, ...]:
    """The part files in a parts folder, in shard order."""
    found = [(p, _NAME.match(p.name)) for p in folder.glob("shard-*-of-*.json")]
    return tuple(p for p, m in sorted(found, key=lambda f: int(f[1]["index"]) if f[1] else 0) if m)


def incidents_with_parts(postmortems: Path) -> tuple[str, ...]:
    """Every incident with a parts folder holding a part, by id."""
    folders = sorted(postmortems.glob("*.parts")) if postmortems.is_dir() else []
    return tuple(f.name.removesuffix(".parts") for f in folders if part_files(f))


def check_parts(parts: Sequence[Part], incident: str) -> None:
    """Refuse parts that disagree: another incident, migration, fleet or number of shards,
    two parts of one shard, or two shards that both hold one target."""
    first = parts[0]
    holder: dict[str, str] = {}
    seen: set[int] = set()
    for part in parts:
        where = part.path.name if part.path else part.shard
        for what, mine, theirs in (
            ("incident", part.incident, incident),
            ("migration", part.pm.migration, first.pm.migration),
            ("fleet", part.pm.environment, first.pm.environment),
            ("number of shards", part.count, first.count),
        ):
            if mine != theirs:
                raise UsageError(
                    f"{where}: its {what} is {mine}, another part's is {theirs}",
                    hint=f"keep only the parts of {incident} in {incident}.parts/",
                )
        if part.index in seen or not 1 <= part.index <= part.count:
            raise UsageError(f"{where}: shard {part.shard} is there twice or out of range")
        seen.add(part.index)
        for line in part.pm.targets:
            if holder.setdefault(line.name, where) != where:
                raise UsageError(
                    f"{where}: target {line.name} is also in {holder[line.name]}",
                    hint="the parts come from different slicings of the fleet; keep one",
                )


@dataclass(frozen=True)
class Folded:
    """The postmortem with the parts folded in, and what the shards reported."""

    pm: Postmortem
    count: int
    reported: tuple[int, ...]
    stopped: tuple[int, ...]
    """Shards whose last part says their run did not finish."""
    first_commit: tuple[datetime, int | None] | None
    changed: bool

    @property
    def missing(self) -> tuple[int, ...]:
        return tuple(i for i in range(1, self.count + 1) if i not in self.reported)

    @property
    def left(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.pm.targets if t.outcome not in DONE)


def opening_of(parts: Sequence[Part]) -> Postmortem:
    """A new postmortem from the parts' opening facts: the earliest started shard's, with
    nothing of any shard's progress yet."""
    earliest = min(parts, key=lambda p: (p.pm.started_at is None, p.pm.started_at, p.index))
    return replace(earliest.pm, timeline=(), targets=(), steps_pending=(), extra={})


def fold(pm: Postmortem, parts: Iterable[Part]) -> Folded:
    """``pm`` with ``parts`` folded in (in the order they were last written)."""
    parts = list(parts)
    shards: dict[str, Any] = dict(pm.extra.get("shards") or {})
    reported: dict[str, Any] = dict(shards.get("reported") or {})
    stopped = {int(i) for i in shards.get("stopped") or ()}
    seen = set(pm.timeline)
    runs: list[list[Entry]] = []
    lines = {t.name: t for t in pm.targets}
    count = int(shards.get("count") or 0)
    for part in sorted(parts, key=lambda p: (p.updated_at is None, p.updated_at, p.index)):
        count = part.count
        runs.append([e for e in part.pm.timeline if e not in seen])
        seen.update(runs[-1])
        known = moment(reported.get(str(part.index)))
        if known is not None and part.updated_at is not None and part.updated_at < known:
            continue  # an older copy of a part already folded: its lines are out of date
        lines.update({t.name: t for t in part.pm.targets})
        reported[str(part.index)] = _iso(part.updated_at) or ""
        stopped.discard(part.index)
        if not part.finished:
            stopped.add(part.index)
    # Each timeline keeps its own order (a commit is stamped with its transaction's second),
    # interleaved with the others by time.
    entries = tuple(heapq.merge(pm.timeline, *runs, key=lambda e: e.at))
    record = {"count": count, "reported": dict(sorted(reported.items(), key=lambda i: int(i[0])))}
    record["stopped"] = sorted(stopped)
    folded = replace(
        pm,
        timeline=entries,
        targets=tuple(lines[name] for name in sorted(lines)),
        extra={**pm.extra, "shards": record},
    )
    return Folded(
        folded,
        count,
        tuple(sorted(int(i) for i in reported)),
        tuple(sorted(stopped)),
        _first(pm, parts),
        changed=folded != pm,
    )


def _first(pm: Postmortem, parts: Iterable[Part]) -> tuple[datetime, int | None] | None:
    """The earliest commit across the postmortem and every part: it sets the deadline."""
    commits = [(p.first_commit, p.audit_event) for p in parts if p.first_commit is not None]
    if pm.rolled_back_at is not None:
        commits.append((pm.rolled_back_at, pm.audit_event))
    return min(commits, key=lambda c: c[0]) if commits else None


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z") if at else None
