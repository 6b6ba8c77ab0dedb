"""``backout postmortems merge``: the shards' parts folded into the one postmortem.

The postmortem is made from the parts' opening facts when it does not exist yet. Once any
shard committed, it is completed as one fleet emergency completes it: the review deadline
from the earliest commit across every part, the fix-forward stub written once, the action
item; then committed on ``incident/<id>``. A shard that never reported, one whose run did not
finish, or a target left to do keeps a pending step (and the merge exits 3); a later merge
with the missing part completes it. Folding the same parts again changes nothing. The parts
are removed only once the postmortem holding them is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from backout import git
from backout.config import Settings
from backout.errors import BackoutError, ExitCode, UsageError
from backout.git import BranchCommit
from backout.migrations.authoring import create_migration, plan_fix_forward
from backout.migrations.catalog import project_catalog
from backout.operations.emergency.incident import Completion, Incident
from backout.operations.emergency.steps import existing_stub
from backout.postmortems.collection import Record, load
from backout.postmortems.deadlines import review_due
from backout.postmortems.file import render_postmortem
from backout.postmortems.incidents import slug
from backout.postmortems.parts import (
    Folded,
    Part,
    check_parts,
    fold,
    incidents_with_parts,
    opening_of,
    part_files,
    parts_folder,
    read_part,
)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Merged:
    """What a merge found and did."""

    incident: str
    postmortem: Path
    created: bool
    written: bool
    """The postmortem changed (False: these parts were folded in already)."""
    folded: Folded
    parts: tuple[Path, ...]
    """The part files folded in (and then removed)."""
    fix_forward: Path | None = None
    git: BranchCommit | None = None
    warnings: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.folded.pm.steps_pending

    @property
    def exit_code(self) -> int:
        return ExitCode.OK if self.complete else ExitCode.PROBLEMS


def merge_parts(
    settings: Settings,
    incident: str | None = None,
    *,
    no_git: bool = False,
    now: Clock = lambda: datetime.now(UTC),
) -> Merged:
    """Fold the parts of ``incident`` (or of the one incident with parts) into its postmortem."""
    folder = settings.postmortems
    incident = _which(folder, incident)
    files = part_files(parts_folder(folder, incident))
    parts = [read_part(p) for p in files]
    record = _record(folder, incident)
    if not parts and record is None:
        raise UsageError(
            f"{incident} has neither parts nor a postmortem in {settings.relative(folder)}",
            hint=f"put the shards' parts in {settings.relative(parts_folder(folder, incident))}/",
        )
    if not parts:  # merged already: what the postmortem says, unchanged
        assert record is not None
        folded = fold(record.pm, [])
        return Merged(incident, record.path, False, False, folded, ())
    check_parts(parts, incident)
    _refuse_other(record, parts)
    start = _start(settings, incident, record, parts)
    stub, warnings = _fold_in(settings, start, parts, now)
    text = render_postmortem(start.pm, settings.templates)
    written = not start.path.is_file() or start.path.read_text(encoding="utf-8") != text
    if written:
        start.save()
    commit = None if no_git else _commit(settings, start, stub, warnings)
    for path in files:  # only now: the postmortem holds what they said
        path.unlink(missing_ok=True)
    if not any(parts_folder(folder, incident).iterdir()):
        parts_folder(folder, incident).rmdir()
    folded = fold(start.pm, [])
    return Merged(
        incident, start.path, record is None, written, folded, files, stub, commit, tuple(warnings)
    )


def _fold_in(
    settings: Settings, incident: Incident, parts: list[Part], now: Clock
) -> tuple[Path | None, list[str]]:
    """The parts folded into the incident's postmortem, completed once any shard committed,
    with what it still waits for."""
    folded = fold(incident.pm, parts)
    incident.pm = folded.pm
    if folded.changed:
        shards = ", ".join(p.shard for p in parts)
        incident.pm = incident.pm.with_entry(now(), f"merged the parts of shards {shards}")
    stub, warnings = None, list[str]()
    if folded.first_commit is not None:
        stub, warnings = _complete(settings, incident, folded, now)
    incident.pm = replace(incident.pm, steps_pending=pending(folded))
    return stub, warnings


def _which(folder: Path, incident: str | None) -> str:
    if incident is not None:
        return incident.strip().upper()
    found = incidents_with_parts(folder)
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(
            f"no shard's part in {folder}",
            hint="put the parts (ops/postmortems/<INCIDENT>.parts/shard-I-of-N.json) there",
        )
    raise UsageError(
        f"parts of {len(found)} incidents: {', '.join(found)}", hint="name the one to merge"
    )


def _record(folder: Path, incident: str) -> Record | None:
    return next((r for r in load(folder).records if r.pm.id == incident), None)


def _refuse_other(record: Record | None, parts: list[Part]) -> None:
    ours = (parts[0].pm.migration, parts[0].pm.environment)
    if record is not None and (record.pm.migration, record.pm.environment) != ours:
        raise UsageError(
            f"{record.path.name} is about {record.pm.migration} on {record.pm.environment}, "
            f"the parts about {ours[0]} on {ours[1]}",
            hint="the parts belong to another incident: check their folder's name",
        )


def _start(settings: Settings, incident: str, record: Record | None, parts: list[Part]) -> Incident:
    """The postmortem to fold into: the one in the folder (its body-only facts, which its
    front matter does not hold, from the parts), or a new one from the parts' opening."""
    if record is None:
        pm = opening_of(parts)
        path = settings.postmortems / f"{incident}-{slug(pm.migration)}.md"
        return Incident(pm, path, settings.templates)
    pm = record.pm
    if parts:
        first = opening_of(parts)
        pm = replace(
            pm,
            rollback_sql=first.rollback_sql,
            rollback_sha256=first.rollback_sha256,
            introduced_by=first.introduced_by,
        )
    return Incident(pm, record.path, settings.templates, continued=True)


def _complete(
    settings: Settings, incident: Incident, folded: Folded, now: Clock
) -> tuple[Path | None, list[str]]:
    """The stub (written once) and the deadlines from the earliest commit of any shard."""
    assert folded.first_commit is not None
    at, event = folded.first_commit
    due = review_due(at, settings.clock_policy)
    warnings: list[str] = []
    stub = None
    try:
        stub = _stub(settings, incident, now)
    except BackoutError as exc:
        warnings.append(f"fix-forward stub not written: {exc.message}")
    first = incident.pm.rolled_back_at is None or incident.pm.review_due != due
    incident.complete(settings, Completion(at, due, event, stub))
    if first:
        incident.pm = incident.pm.with_entry(
            now(), f"postmortem ready for review; review due {due:%Y-%m-%d %H:%M} UTC"
        )
    return stub, warnings


def _stub(settings: Settings, incident: Incident, now: Clock) -> Path:
    catalog = project_catalog(settings)
    entry = catalog.resolve(incident.pm.migration, settings.root)
    found = existing_stub(catalog, entry, incident.pm.id)
    if found is not None:
        return found
    path = create_migration(
        plan_fix_forward(catalog, entry, incident.pm.id, templates=settings.templates)
    )
    incident.pm = incident.pm.with_entry(
        now(), f"fix-forward stub written: {settings.relative(path)}"
    )
    return path


def pending(folded: Folded) -> tuple[str, ...]:
    """What the incident still waits for: shards that never reported or did not finish, and
    the targets left to roll back (the same step a fleet emergency leaves)."""
    steps = [f"shard {i}/{folded.count} never reported: merge its part" for i in folded.missing]
    steps += [
        f"shard {i}/{folded.count} did not finish: run it again, then merge its part"
        for i in folded.stopped
    ]
    left = folded.left
    if left:
        shown = ", ".join(left[:10]) + (", ..." if len(left) > 10 else "")
        steps.append(f"roll back on the targets left: {shown}")
    return tuple(steps)


def _commit(
    settings: Settings, incident: Incident, stub: Path | None, warnings: list[str]
) -> BranchCommit | None:
    """The postmortem and the stub on ``incident/<id>`` (extended when it exists)."""
    branch = f"incident/{incident.pm.id}"
    message = f"{incident.pm.id}: postmortem of the fleet's shards and fix-forward stub"
    files = [incident.path, *([stub] if stub is not None else [])]
    try:
        commit = git.commit_files_on_branch(settings.root, files, branch, message, extend=True)
    except git.GitError as exc:
        warnings.append(f"not committed on {branch}: {exc}")
        return None
    if commit is None:
        warnings.append("not a git repository: the postmortem and the stub are not committed")
    return commit
