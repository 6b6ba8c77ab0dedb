"""The emergency's incident: its postmortem, opened first and rewritten after every entry.

An unfinished incident for the same migration on the same environment is continued (a re-run
after a failure or a killed process); otherwise a new one takes the next free incident id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from backout import git
from backout.config import Settings
from backout.database.connection import Target
from backout.database.runner import sql_sha256
from backout.migrations.file import MigrationFile
from backout.migrations.statements import Statement
from backout.operations.approval import Operator
from backout.postmortems.collection import taken_incident_ids, unfinished_incident
from backout.postmortems.deadlines import action_item_due
from backout.postmortems.file import write_postmortem as _write
from backout.postmortems.incidents import next_incident_id, slug
from backout.postmortems.model import ActionItem, Postmortem

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Opening:
    """What the postmortem of a new (or continued) incident starts with."""

    migration: MigrationFile
    statements: tuple[Statement, ...]
    target: Target
    operator: Operator
    reason: str
    severity: str
    owner: str | None
    backup_waiver: str | None
    fleet: str | None = None
    """Across a fleet: the incident is the fleet's (its environment, its title)."""

    @property
    def environment(self) -> str:
        """What the incident is on: the fleet's name, or the target's."""
        return self.fleet if self.fleet is not None else self.target.name

    @property
    def title(self) -> str:
        where = f"fleet {self.fleet}" if self.fleet is not None else self.target.name
        return f"Rollback of {self.migration.name} on {where}"


@dataclass(frozen=True)
class Completion:
    """What the postmortem records once the rollback committed and the stub is written."""

    rolled_back_at: datetime
    review_due: datetime
    audit_event: int | None
    stub: Path | None
    """The fix-forward stub; None when it could not be written (a re-run writes it)."""


@dataclass
class Incident:
    """The open incident: its postmortem, rewritten after every step."""

    pm: Postmortem
    path: Path
    templates: Path
    continued: bool = False
    """An earlier run opened it; ``pm.steps_pending`` says what that run left to do."""

    @property
    def label(self) -> str:
        """What the incident's own timeline entries start with (a shard's part: its slice)."""
        return ""

    def note(self, at: datetime, text: str) -> None:
        """Add ``text`` to the timeline at ``at`` and write the file at once."""
        self.pm = self.pm.with_entry(at, self.label + text)
        self.save()

    def save(self) -> None:
        self.write(self.pm)

    def write(self, pm: Postmortem) -> None:
        """``pm`` written where the incident is kept: its postmortem file."""
        _write(self.path, pm, self.templates)

    def record_backup(self, where: str) -> None:
        """Where the backup is (written with the next entry)."""
        self.pm = replace(self.pm, backup=where)

    def record_schema_check(self, check: str) -> None:
        """The schema check's result (written with the next entry)."""
        self.pm = replace(self.pm, schema_check=check)

    def pending(self, steps: tuple[str, ...]) -> None:
        """Record the steps still to do (none: the emergency finished)."""
        self.pm = replace(self.pm, steps_pending=steps)
        self.save()

    def complete(self, settings: Settings, done: Completion) -> None:
        """The rollback is done: the deadlines, the fix-forward and its action item."""
        rolled_back_at, stub = done.rolled_back_at, done.stub
        due = action_item_due(rolled_back_at, self.pm.severity, settings.action_item_days)
        items = self.pm.action_items
        if stub is not None:
            items = (ActionItem(f"Write, review and apply {stub.name}", self.pm.owner, due),)
        self.pm = replace(
            self.pm,
            rolled_back_at=rolled_back_at,
            review_due=done.review_due,
            fix_forward=settings.relative(stub) if stub else self.pm.fix_forward,
            audit_event=done.audit_event,
            action_items=items,
        )


def open_incident(settings: Settings, opening: Opening, started: datetime) -> Incident:
    """The incident's postmortem, written at once; an unfinished one for the same migration is
    continued (a re-run after a failure or a killed process)."""
    folder, name = settings.postmortems, opening.migration.name
    unfinished = unfinished_incident(folder, name, opening.environment)
    if unfinished is not None:
        pm = carried_over(postmortem(settings, opening, unfinished.pm.id, started), unfinished.pm)
        incident = Incident(pm, unfinished.path, settings.templates, continued=True)
        incident.note(started, f"re-run by {opening.operator.name} to continue the incident")
        return incident
    taken = taken_incident_ids(settings.root, folder)
    incident_id = next_incident_id(started.date(), taken)
    path = folder / f"{incident_id}-{slug(name)}.md"
    incident = Incident(
        postmortem(settings, opening, incident_id, started), path, settings.templates
    )
    reason = " ".join(opening.reason.split())
    incident.note(started, f"incident opened by {opening.operator.name}: {reason}")
    return incident


def carried_over(pm: Postmortem, earlier: Postmortem) -> Postmortem:
    """``pm`` for a re-run, keeping what the earlier run recorded of its progress."""
    return replace(
        pm,
        timeline=earlier.timeline,
        targets=earlier.targets,
        rolled_back_at=earlier.rolled_back_at,
        review_due=earlier.review_due,
        fix_forward=earlier.fix_forward,
        backup=earlier.backup,
        audit_event=earlier.audit_event,
        rehearsal=earlier.rehearsal,
        schema_check=earlier.schema_check,
        steps_pending=earlier.steps_pending,
        action_items=earlier.action_items,
    )


def postmortem(
    settings: Settings, opening: Opening, incident_id: str, started: datetime
) -> Postmortem:
    """The postmortem as the incident opens: who, what, where, the rollback SQL and its hash."""
    migration, operator = opening.migration, opening.operator
    history = git.file_history(migration.path, None)
    introduced = f"commit {history[-1].sha} ({history[-1].author})" if history else None
    return Postmortem(
        id=incident_id,
        title=opening.title,
        severity=opening.severity,
        environment=opening.environment,
        migration=migration.name,
        owner=opening.owner or operator.name,
        reason=opening.reason,
        operator=operator.name,
        started_at=started,
        clock=settings.clock_policy,
        approved_by=operator.approved_by,
        backup_waiver=opening.backup_waiver,
        rollback_sql="".join(f"{s.sql};\n" for s in opening.statements),
        rollback_sha256=sql_sha256(opening.statements),
        introduced_by=introduced,
    )
