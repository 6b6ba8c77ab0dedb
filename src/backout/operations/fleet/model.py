"""What a fleet-wide command is asked, what it shows for confirmation, and what it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from backout.errors import BackoutError, ExitCode
from backout.fleets.targets import Fleet
from backout.git import BranchCommit
from backout.migrations.statements import Statement
from backout.operations.fleet.engine import Rollout, Status, TargetOutcome
from backout.operations.fleet.survey import Found, Presence
from backout.operations.impact import BlastRadius

DONE_WORDS = {Status.DONE: "rolled back", Status.EARLIER: "rolled back earlier"}
"""What the progress lines and the output call a rollback's statuses."""
DRY_RUN_WORDS = {Status.DONE: "passed the dry run", Status.FAILED: "failed"}


@dataclass(frozen=True)
class FleetPlan:
    """What is about to roll back where, shown once for the whole fleet's confirmation: the
    targets in their waves, those left alone, and the canary's blast radius."""

    action: str
    fleet: Fleet
    migration: str
    confirm_word: str
    statements: tuple[Statement, ...]
    waves: tuple[tuple[str, ...], ...]
    left_out: tuple[TargetOutcome, ...]
    blast: BlastRadius | None = None
    """The canary's: the other targets are measured again, each before its own rollback."""
    warnings: tuple[str, ...] = ()


FleetConfirm = Callable[[FleetPlan], bool]


@dataclass(frozen=True)
class FleetResult:
    """Every target of the fleet and what happened there, in the fleet's order; the waves."""

    fleet: Fleet
    migration: str
    action: str
    dry_run: bool
    rollout: Rollout
    left_out: tuple[TargetOutcome, ...] = ()

    @property
    def outcomes(self) -> tuple[TargetOutcome, ...]:
        """Each target's outcome, in the fleet's order."""
        by_name = {o.name: o for o in (*self.left_out, *self.rollout.outcomes)}
        return tuple(by_name[n] for n in self.fleet.names if n in by_name)

    @property
    def exit_code(self) -> int:
        return self.rollout.exit_code

    def named(self, status: Status) -> tuple[str, ...]:
        return tuple(o.name for o in self.outcomes if o.status is status)


@dataclass
class FleetEmergencyResult:
    """A fleet emergency: the rollout, and the one incident it opened (or continued)."""

    result: FleetResult
    incident_id: str | None = None
    postmortem: Path | None = None
    part: Path | None = None
    """A shard's part of the incident (``--shard``): it writes no postmortem."""
    fix_forward: Path | None = None
    review_due: datetime | None = None
    rolled_back_at: datetime | None = None
    """The first commit of the incident: the canary's."""
    git: BranchCommit | None = None
    scratch_rehearsal: str | None = None
    backups: Path | None = None
    """The incident's backup folder: one subfolder per target."""
    warnings: list[str] = field(default_factory=list)
    stopped: str | None = None
    """Why nothing committed, when nothing did (the canary failed)."""

    @property
    def exit_code(self) -> int:
        return self.result.exit_code


def left_out(found: tuple[Found, ...]) -> tuple[TargetOutcome, ...]:
    """The survey's skipped and done-earlier targets, as outcomes."""
    return tuple(
        TargetOutcome(
            f.target.name,
            Status.EARLIER if f.presence is Presence.EARLIER else Status.SKIPPED,
            f.said,
        )
        for f in found
    )


class RolloutStopped(BackoutError):
    """The rollout committed nothing anywhere: its first failure, with that failure's exit
    code. The incident stays open; a re-run continues it."""

    def __init__(self, first: TargetOutcome) -> None:
        super().__init__(
            f"{first.name}: {first.reason}",
            hint="nothing was rolled back on any target; fix it and run the same command again",
        )
        self.exit_code = ExitCode(first.exit_code)
        self.first = first
