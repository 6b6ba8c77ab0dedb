"""One shard of a fleet emergency (``--shard I/N``): its part of the one incident.

Every job of a CI matrix must join the same incident without talking to the others. They all
check out the same commit, so the id is chosen from what that commit holds: ``--incident ID``
when given; else an unfinished incident of the same migration and fleet in the postmortems
folder (its postmortem, or its parts folder); else the next free id of the UTC day. The jobs
of one matrix started on one UTC day therefore agree; a matrix that may straddle midnight (or
jobs that check out different commits) pins the id with ``--incident``.

A shard writes no postmortem, stub, branch or decision: it writes its part
(:mod:`backout.postmortems.parts`) after every entry, atomically, and ``backout postmortems
merge`` folds the parts into the one postmortem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from backout.config import Settings
from backout.errors import UsageError
from backout.operations.emergency.incident import (
    Clock,
    Incident,
    Opening,
    carried_over,
    postmortem,
)
from backout.operations.emergency.model import Produced, Run
from backout.operations.emergency.steps import note_blast_radius, opening
from backout.operations.fleet.on_target import Commits
from backout.postmortems.collection import load, taken_incident_ids, unfinished_incident
from backout.postmortems.incidents import next_incident_id
from backout.postmortems.model import Postmortem
from backout.postmortems.parts import (
    Part,
    incidents_with_parts,
    part_files,
    part_path,
    parts_folder,
    read_part,
    write_part,
)

_ID = re.compile(r"^INC-\d{8}-\d{2,}$")


@dataclass
class ShardIncident(Incident):
    """The incident as one shard keeps it: its part file, rewritten after every entry."""

    shard: tuple[int, int] = (1, 1)
    commits: Commits = field(default_factory=Commits)
    clock: Clock | None = None
    finished: bool = False

    @property
    def label(self) -> str:
        return f"shard {self.shard[0]}/{self.shard[1]}: "

    def write(self, pm: Postmortem) -> None:
        first = self.commits.first()
        at, event = first if first is not None else (None, None)
        part = Part(
            pm.id,
            *self.shard,
            pm,
            first_commit=at,
            audit_event=event,
            finished=self.finished,
            updated_at=self.clock() if self.clock else None,
        )
        write_part(self.path, part)


def shard_incident_id(
    settings: Settings, migration: str, fleet: str, pinned: str | None, day: datetime
) -> str:
    """The incident every shard of one matrix joins (see the module's docstring)."""
    folder = settings.postmortems
    if pinned is not None:
        return _checked(settings, pinned.strip().upper(), migration, fleet)
    unfinished = unfinished_incident(folder, migration, fleet)
    if unfinished is not None:
        return unfinished.pm.id
    for incident in incidents_with_parts(folder):
        if parts_about(settings, incident) == (migration, fleet):
            return incident
    return next_incident_id(day.date(), taken_incident_ids(settings.root, folder))


def parts_about(settings: Settings, incident: str) -> tuple[str, str] | None:
    """The migration and fleet an incident's parts are about (None: it has none)."""
    files = part_files(parts_folder(settings.postmortems, incident))
    if not files:
        return None
    pm = read_part(files[0]).pm
    return pm.migration, pm.environment


def _checked(settings: Settings, incident: str, migration: str, fleet: str) -> str:
    """``--incident``: a well-formed id, not one of another incident's."""
    if not _ID.match(incident):
        raise UsageError(
            f"--incident {incident!r} is not an incident id",
            hint="write INC-YYYYMMDD-NN, e.g. INC-20261126-01",
        )
    ours = (migration, fleet)
    for record in load(settings.postmortems).records:
        if record.pm.id != incident:
            continue
        if (record.pm.migration, record.pm.environment) != ours:
            raise UsageError(
                f"--incident {incident} is the incident of {record.pm.migration} on "
                f"{record.pm.environment} ({settings.relative(record.path)})",
                hint="give this rollout an id of its own, or none (the next free one)",
            )
        if record.pm.rolled_back_at is not None and not record.pm.steps_pending:
            raise UsageError(
                f"--incident {incident} is finished ({settings.relative(record.path)})",
                hint="a new rollback is a new incident: give a new id, or none",
            )
    found = parts_about(settings, incident)
    if found is not None and found != ours:
        raise UsageError(
            f"--incident {incident} has parts for {found[0]} on {found[1]}",
            hint="give this rollout an id of its own, or none (the next free one)",
        )
    return incident


def open_part(
    settings: Settings, started: Opening, incident_id: str, shard: tuple[int, int], run: Run
) -> ShardIncident:
    """The shard's part, written at once; its earlier part (a killed run's) continued."""
    path = part_path(settings.postmortems, incident_id, *shard)
    pm = postmortem(settings, started, incident_id, run.now())
    earlier = read_part(path) if path.is_file() else None
    if earlier is not None:
        pm = carried_over(pm, earlier.pm)
    incident = ShardIncident(
        pm, path, settings.templates, continued=earlier is not None, shard=shard, clock=run.now
    )
    who = started.operator.name
    if earlier is not None:
        incident.note(run.now(), f"re-run by {who} to continue the shard")
    else:
        reason = " ".join(started.reason.split())
        incident.note(run.now(), f"opened by {who}: {reason}")
    return incident


def open_the_part(run: Run, incident_id: str, shard: tuple[int, int], commits: Commits) -> Produced:
    """The step in place of "open the incident": the shard's part, and what was measured."""
    settings = run.ctx.settings
    incident = open_part(settings, opening(run), incident_id, shard, run)
    incident.commits = commits
    rehearsal = run.made.scratch_rehearsal
    if rehearsal is not None:
        incident.pm = replace(incident.pm, rehearsal=rehearsal)
        incident.note(run.now(), f"rehearsal on a scratch database: {rehearsal}")
    note_blast_radius(run, incident)
    where = settings.relative(incident.path)
    run.ctx.report(f"incident {incident_id}, shard {shard[0]}/{shard[1]}: part {where}")
    return Produced(incident=incident)


def finish_the_part(run: Run) -> Produced:
    """The part marked finished: the merge may count on it."""
    finish(run.incident)
    return Produced()


def finish(incident: Incident) -> None:
    if isinstance(incident, ShardIncident):
        incident.finished = True
        incident.note(incident.clock() if incident.clock else datetime.now(UTC), "part finished")
