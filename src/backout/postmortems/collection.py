"""The postmortems of a project, found and read: every scan of the postmortems folder (and of
the branches) is here, for the lead's commands and for ``emergency``.

A postmortem is any ``*.md`` file in the postmortems folder whose YAML front matter has an
``id``; other Markdown files there (a README) are not postmortems. With ``all_branches``, the
postmortems that exist only on local or remote-tracking branches (the ``incident/<id>``
branches ``emergency`` makes) are read too, through git, and marked with their branch.

A file whose front matter is broken becomes a :class:`Broken` entry with its path and line; it
never stops the reading of the others. Reading is pure apart from the files and git.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backout import git
from backout.cache import ReadCache, digest
from backout.errors import RefusedError, UsageError
from backout.postmortems.file import write_atomically
from backout.postmortems.front_matter import (
    FrontMatterError,
    from_front_matter,
    join_front_matter,
    key_lines,
    split_front_matter,
)
from backout.postmortems.incidents import ids_in
from backout.postmortems.model import Postmortem


@dataclass(frozen=True)
class Record:
    """One postmortem as it was found: the model, and where and how it is written."""

    pm: Postmortem
    path: Path
    """Where it is: the file, or for one read from a branch, its path in the repository."""
    branch: str | None
    """``None`` for a file in the working tree; else the branch it was read from."""
    front: Mapping[str, Any]
    """The front matter as written, unknown keys and all: what a change writes back."""
    body: str
    body_line: int = 1
    """The file line where the body starts."""
    problems: tuple[tuple[int, str], ...] = field(default=(), compare=False)
    """``(line, message)`` for values that could not be read (a bad date, an unknown state)."""


@dataclass(frozen=True)
class Broken:
    """A file that looks like a postmortem but cannot be read."""

    path: Path
    branch: str | None
    line: int
    message: str


@dataclass(frozen=True)
class Collection:
    records: tuple[Record, ...]
    broken: tuple[Broken, ...] = ()
    all_branches: bool = False
    """Whether the branches were read too (else a postmortem only on a branch is not here)."""


def load(folder: Path, *, all_branches: bool = False, cache: Path | None = None) -> Collection:
    """The postmortems in ``folder`` and, with ``all_branches``, those only on branches.

    With ``cache`` (a file), what reading each file found is kept there for the next run
    (:mod:`backout.postmortems.cache`); the result is the same with or without it."""
    records: list[Record] = []
    broken: list[Broken] = []
    kept = ReadCache(cache)
    for path in sorted(folder.glob("*.md")) if folder.is_dir() else ():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            broken.append(Broken(path, None, 1, f"cannot be read: {exc}"))
            continue
        _add(parse(text, path, None, kept), records, broken)
    kept.save()
    if all_branches:
        seen = {r.pm.id for r in records}
        for found in git.files_in_folder_on_branches(folder, suffix=".md"):
            parsed = parse(found.text, found.path, found.branch)
            if isinstance(parsed, Record):
                if parsed.pm.id in seen:
                    continue
                seen.add(parsed.pm.id)
            _add(parsed, records, broken)
    return Collection(tuple(records), tuple(broken), all_branches)


def _add(parsed: Record | Broken | None, records: list[Record], broken: list[Broken]) -> None:
    if isinstance(parsed, Record):
        records.append(parsed)
    elif isinstance(parsed, Broken):
        broken.append(parsed)


def parse(
    text: str, path: Path, branch: str | None, cache: ReadCache | None = None
) -> Record | Broken | None:
    """One file's text: a :class:`Record`, a :class:`Broken` one, or ``None`` when it is not a
    postmortem (no front matter, or no ``id`` in it)."""
    key = digest(text) if cache is not None else ""
    entry = cache.get(key) if cache is not None else None
    if entry is not None:
        return _from_entry(entry, text, path, branch)
    found = _parse(text, path, branch)
    if cache is not None:
        cache.put(key, _entry(found, text))
    return found


def _parse(text: str, path: Path, branch: str | None) -> Record | Broken | None:
    try:
        front, body = split_front_matter(text)
    except FrontMatterError as exc:
        return Broken(path, branch, exc.line, str(exc))
    if not front or not front.get("id"):
        return None
    pm, problems = from_front_matter(front)
    line_of = key_lines(text)
    return Record(
        pm=pm,
        path=path,
        branch=branch,
        front=front,
        body=body,
        body_line=text[: len(text) - len(body)].count("\n") + 1,
        problems=tuple((line_of.get(key, 1), message) for key, message in problems),
    )


def _entry(found: Record | Broken | None, text: str) -> dict[str, Any]:
    """What :func:`_parse` found, as a cache entry."""
    if found is None:
        return {"postmortem": False}
    if isinstance(found, Broken):
        return {"broken": [found.line, found.message]}
    return {
        "front": found.front,
        "body_at": len(text) - len(found.body),
        "body_line": found.body_line,
        "problems": [list(p) for p in found.problems],
    }


def _from_entry(
    entry: dict[str, Any], text: str, path: Path, branch: str | None
) -> Record | Broken | None:
    """A cache entry back as :func:`_parse` gave it (the model built again from the front)."""
    if "broken" in entry:
        line, message = entry["broken"]
        return Broken(path, branch, line, message)
    if "front" not in entry:
        return None
    pm, _ = from_front_matter(entry["front"])
    return Record(
        pm=pm,
        path=path,
        branch=branch,
        front=entry["front"],
        body=text[entry["body_at"] :],
        body_line=entry["body_line"],
        problems=tuple((line, message) for line, message in entry["problems"]),
    )


# -- what emergency asks ------------------------------------------------------------------------


def unfinished_incident(folder: Path, migration: str, environment: str) -> Record | None:
    """The first incident ``emergency`` opened in ``folder`` for ``migration`` on
    ``environment`` that never finished (its rollback failed or was killed, or a step after
    the rollback is still pending): a re-run continues it instead of opening another."""
    for record in load(folder).records:
        if (
            record.path.name.startswith("INC-")  # the files emergency names; not hand-made ones
            and record.pm.migration == migration
            and record.pm.environment == environment
            and (not record.front.get("rolled_back_at") or record.pm.steps_pending)
        ):
            return record
    return None


def taken_incident_ids(root: Path, folder: Path) -> set[str]:
    """Every incident id in use: in the names of the files in ``folder``, of the local
    branches of the repository holding ``root``, and of the files in ``folder`` on them."""
    taken = ids_in(p.name for p in folder.glob("*")) if folder.is_dir() else set()
    taken |= ids_in(git.branch_names(root))
    for names in git.files_on_branches(root, folder).values():
        taken |= ids_in(names)
    return taken


# -- finding and changing one -------------------------------------------------------------------


def find(collection: Collection, incident_id: str) -> Record:
    """The postmortem with ``incident_id`` (case-insensitive), or a usage error that suggests."""
    wanted = incident_id.strip().upper()
    for record in collection.records:
        if record.pm.id.upper() == wanted:
            return record
    known = sorted(r.pm.id for r in collection.records)
    close = difflib.get_close_matches(wanted, known, n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "`backout postmortems list` lists them"
    if not collection.all_branches:
        hint += "; one that exists only on a branch is found with --all-branches"
    raise UsageError(f"no postmortem with id {incident_id!r}", hint=hint)


def rewrite(record: Record, front: Mapping[str, Any]) -> None:
    """Write ``front`` over the record's front matter, body unchanged, atomically."""
    if record.branch is not None:
        raise RefusedError(
            f"{record.pm.id} exists only on the branch {record.branch}",
            hint=f"switch to it (git switch {record.branch}) to change it",
        )
    write_atomically(record.path, join_front_matter(dict(front), record.body))
