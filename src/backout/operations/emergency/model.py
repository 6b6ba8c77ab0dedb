"""What an emergency is asked, what its steps produce, and what it returns.

A :class:`Run` is the context every step reads; a step returns a :class:`Produced` holding only
what it made, and the procedure merges it into the run. :attr:`Run.completed` lists the steps
that finished, in order, so a step's completion can be recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from backout.database.runner import Runner, sql_sha256
from backout.git import BranchCommit
from backout.migrations.catalog import Catalog, Entry
from backout.migrations.file import MigrationFile
from backout.migrations.statements import Statement
from backout.operations.backup import BackupPlan, Manifest, Progress
from backout.operations.emergency.incident import Clock, Incident
from backout.operations.impact import BlastRadius
from backout.operations.operation import Context, Plan
from backout.operations.smoke import SmokeResult

SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")


@dataclass(frozen=True)
class Request:
    """What the on-call engineer asked for."""

    reference: str
    reason: str
    severity: str = "SEV2"
    owner: str | None = None
    rollback_file: Path | None = None
    no_backup: bool = False
    backup_waiver: str | None = None
    no_git: bool = False
    dry_run: bool = False
    assume_applied: bool = False
    use_current_rollback: bool = False
    rehearse: bool = True
    """Rehearse the documented rollback on a scratch database first (never blocks)."""
    skipped_rehearsal: str | None = None
    """Why the rehearsal is skipped (``rehearse`` false): recorded in the incident."""
    accept_damage: bool = False
    """Go ahead although the rollback removes what other applied migrations created."""
    incident: str | None = None
    """``--incident``: the id a fleet shard joins, pinned (see :mod:`..fleet.shard`)."""


@dataclass(frozen=True)
class Earlier:
    """A rollback an earlier run of the same incident committed before it was stopped."""

    audit_event: int
    rolled_back_at: datetime
    review_due: datetime
    recorded_schema: tuple[str | None, int] | None
    """The schema hash recorded at apply time and the number of later migrations, if known."""


@dataclass(frozen=True)
class Produced:
    """What the steps made so far; a step returns one holding only its own fields."""

    plan: Plan | None = None
    earlier: Earlier | None = None
    """Resuming: the rollback an earlier run committed."""
    scratch_rehearsal: str | None = None
    blast: BlastRadius | None = None
    accepted_damage: dict[str, list[str]] | None = None
    dry_run_lines: tuple[str, ...] | None = None
    incident: Incident | None = None
    runner: Runner | None = None
    backup_plan: BackupPlan | None = None
    backup: Manifest | None = None
    backup_folder: Path | None = None
    rolled_back_at: datetime | None = None
    review_due: datetime | None = None
    audit_event: int | None = None
    recorded_schema: tuple[str | None, int] | None = None
    """The schema hash recorded at apply time, and how many migrations came after it."""
    schema_check: str | None = None
    smoke: tuple[SmokeResult, ...] | None = None
    fix_forward: Path | None = None
    git: BranchCommit | None = None
    warning: str | None = None
    """Something the engineer must know; the procedure goes on."""

    def merged(self, made: Produced) -> Produced:
        """These products, with what ``made`` holds added (a step never unsets one)."""
        new = {f.name: getattr(made, f.name) for f in fields(made)}
        return replace(self, **{k: v for k, v in new.items() if v is not None})


@dataclass
class Run:
    """One emergency: what it was given, the resources it holds, and what its steps made."""

    ctx: Context
    request: Request
    catalog: Catalog
    entry: Entry
    migration: MigrationFile
    statements: tuple[Statement, ...]
    conn: psycopg.Connection[Any]
    resources: ExitStack
    """The migration lock, from the step that takes it to the step that releases it."""
    now: Clock
    backup_progress: Progress | None = None
    made: Produced = field(default_factory=Produced)
    completed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    left_undone: list[str] = field(default_factory=list)
    """Steps that failed after the commit: still pending, for a re-run."""
    done_earlier: frozenset[str] = frozenset()
    """Steps after the rollback that an earlier run of this incident completed."""
    fleet: str | None = None
    """The fleet this run rolls back across: the incident is the fleet's, named after it."""
    backups: Path | None = None
    """Where this run's backup goes; None: the incident's folder under the backups folder (a
    fleet's target has its own subfolder in it)."""
    audit_details: Mapping[str, Any] = field(default_factory=dict)
    """More for the rollback's audit row (a fleet's name and the target's)."""
    databases: int = 1
    """How many databases this run backs up (a fleet's targets, measured on its canary): the
    pre-flight checks there is room for that many backups."""

    @property
    def committed(self) -> bool:
        """Whether the rollback has committed (in this run or an earlier one)."""
        return self.made.rolled_back_at is not None

    @property
    def incident(self) -> Incident:
        assert self.made.incident is not None, "the incident is opened before this step"
        return self.made.incident

    @property
    def backup_folder(self) -> Path:
        """The folder this run's backup is written to."""
        if self.backups is not None:
            return self.backups
        return self.ctx.settings.backups_folder / self.incident.pm.id

    def note(self, text: str, at: datetime | None = None) -> None:
        """A timeline entry in the incident's postmortem, written at once."""
        self.incident.note(self.now() if at is None else at, text)


@dataclass(frozen=True)
class Step:
    """One named step of the procedure."""

    name: str
    run: Callable[[Run], Produced]
    failure: str | None = None
    """When it fails before the commit: the stage named in the timeline (None: not noted)."""
    after_commit: bool = False
    """It runs after the rollback: a failure is a warning, and a re-run does it if it is not
    recorded as done."""


@dataclass
class Result:
    """What the emergency did; ``--json`` prints it with stable keys."""

    migration: MigrationFile
    statements: tuple[Statement, ...]
    environment: str = ""
    dry_run: bool = False
    incident_id: str | None = None
    postmortem: Path | None = None
    fix_forward: Path | None = None
    backup: Manifest | None = None
    backup_plan: BackupPlan | None = None
    """What the backup holds (or, in a dry run, would hold)."""
    backup_folder: Path | None = None
    review_due: datetime | None = None
    rolled_back_at: datetime | None = None
    audit_event: int | None = None
    git: BranchCommit | None = None
    dry_run_lines: list[str] = field(default_factory=list)
    """``--dry-run``: each statement's result on this database, rolled back."""
    scratch_rehearsal: str | None = None
    """Whether the documented rollback passed rehearsal on a scratch database."""
    blast: BlastRadius | None = None
    """What the rollback locks, removes and waits for, measured before it ran."""
    accepted_damage: dict[str, list[str]] = field(default_factory=dict)
    schema_check: str | None = None
    """After the rollback: whether the schema is what it was before the migration."""
    smoke: list[SmokeResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def sql_sha256(self) -> str:
        return sql_sha256(self.statements)


def result_of(run: Run) -> Result:
    """The emergency's result, from what its steps made."""
    made, incident = run.made, run.made.incident
    warnings = list(made.plan.warnings if made.plan else ())
    return Result(
        run.migration,
        run.statements,
        run.ctx.target.name,
        dry_run=run.request.dry_run,
        incident_id=incident.pm.id if incident else None,
        postmortem=incident.path if incident else None,
        fix_forward=made.fix_forward,
        backup=made.backup,
        backup_plan=made.backup_plan,
        backup_folder=made.backup_folder,
        review_due=made.review_due,
        rolled_back_at=made.rolled_back_at,
        audit_event=made.audit_event,
        git=made.git,
        dry_run_lines=list(made.dry_run_lines or ()),
        scratch_rehearsal=made.scratch_rehearsal,
        blast=made.blast,
        accepted_damage=dict(made.accepted_damage or {}),
        schema_check=made.schema_check,
        smoke=list(made.smoke or ()),
        warnings=warnings + run.warnings,
    )
