"""``backout status`` across a fleet: every target's migration states, and where they drift.

:func:`fleet_status` reads the targets concurrently (at most :data:`READERS` at once), each over
its own read-only, autocommit connection with a short lock timeout, with the same reading as
one database's ``status`` (:func:`backout.operations.status.read_states`). :func:`compare` is
pure: the targets' states in, one row per migration out, each with its states by target, the
majority state and the targets that differ from it. A target that cannot be read stays in the
result with its address (host and database) and a one-line, redacted reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg

from backout.config import Settings
from backout.database.connection import Target, connect, translate
from backout.errors import BackoutError, ExitCode
from backout.fleets.targets import Fleet, address
from backout.migrations.catalog import Catalog, project_catalog
from backout.migrations.versions import version_key
from backout.operations.status import MigrationStatus, State, read_states
from backout.redaction import redact

READERS = 8
"""Targets read at once: status only reads, so more than a rollout's concurrency, but bounded
(each reader holds a connection to its server)."""
LOCK_TIMEOUT = 1.0
"""Seconds a read may wait for a lock (behind a migration running on that target): then the
target is reported as not read rather than holding the whole table up."""
PROBLEMS = frozenset({State.PENDING, State.MODIFIED, State.MISSING, State.DAMAGED, State.DIRTY})
"""What one database's ``status --check`` exits 3 for."""


@dataclass(frozen=True)
class TargetRead:
    """One target's states, or why they could not be read."""

    name: str
    address: str
    """Its host and database (:func:`backout.fleets.targets.address`): never a password."""
    states: tuple[MigrationStatus, ...] | None = None
    error: str | None = None
    """Why it could not be read: one line, redacted."""


@dataclass(frozen=True)
class MigrationRow:
    """One migration across the targets that answered."""

    folder: Path
    version: str
    name: str
    states: Mapping[str, State | None]
    """By target name, in the fleet's order; None: no history row and no file on that target
    (a migration whose file is gone, applied elsewhere)."""
    majority: State | None
    """The most common state; a tie goes to the state of the target listed first."""

    @property
    def differing(self) -> tuple[str, ...]:
        """The targets whose state is not the majority's."""
        return tuple(t for t, s in self.states.items() if s != self.majority)


@dataclass(frozen=True)
class FleetStatus:
    """Every target of a fleet (or of a shard of it), and every migration across them."""

    fleet: str
    shard: tuple[int, int] | None
    targets: tuple[TargetRead, ...]
    rows: tuple[MigrationRow, ...]

    @property
    def answered(self) -> tuple[TargetRead, ...]:
        return tuple(t for t in self.targets if t.states is not None)

    @property
    def unread(self) -> tuple[TargetRead, ...]:
        return tuple(t for t in self.targets if t.states is None)

    @property
    def differing(self) -> dict[str, tuple[MigrationRow, ...]]:
        """Each target that differs from the majority, with the migrations it differs on."""
        found = {t.name: tuple(r for r in self.rows if t.name in r.differing) for t in self.targets}
        return {name: rows for name, rows in found.items() if rows}

    @property
    def agree(self) -> bool:
        """Every target that answered is in the majority's state on every migration."""
        return not self.differing

    def with_problems(self) -> tuple[str, ...]:
        """The targets where a migration is in a state ``status --check`` fails on."""
        return tuple(
            t.name for t in self.answered if any(s.state in PROBLEMS for s in t.states or ())
        )


def fleet_status(settings: Settings, fleet: Fleet) -> FleetStatus:
    """Every target's migration states, read concurrently. Read-only: creates nothing, and
    each connection is read-only."""
    catalog = project_catalog(settings)
    workers = max(1, min(READERS, len(fleet.targets)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backout-status") as pool:
        reads = tuple(pool.map(lambda t: read_target(settings, catalog, t), fleet.targets))
    return compare(fleet.name, fleet.shard, reads)


def read_target(settings: Settings, catalog: Catalog, target: Target) -> TargetRead:
    """One target's states, or the one-line reason it could not be read (never raised: the
    other targets are still read)."""
    where = address(target.url)
    try:
        with connect(target.url, autocommit=True, lock_timeout=LOCK_TIMEOUT) as conn:
            conn.execute("SET default_transaction_read_only = on")
            states = read_states(settings, catalog, conn, damage=True)
    except BackoutError as exc:
        return TargetRead(target.name, where, error=redact(exc.message, target.url))
    except psycopg.Error as exc:
        return TargetRead(target.name, where, error=translate(exc, target.url).message)
    return TargetRead(target.name, where, tuple(states))


def compare(fleet: str, shard: tuple[int, int] | None, reads: Sequence[TargetRead]) -> FleetStatus:
    """The migrations of every target that answered, in folder and version order, each with
    its state on every such target and the majority state."""
    folders: dict[Path, int] = {}
    found: dict[tuple[Path, str], MigrationStatus] = {}
    for read in reads:
        for s in read.states or ():
            folders.setdefault(s.folder, len(folders))
            found.setdefault((s.folder, s.name), s)
    keys = sorted(found, key=lambda k: (folders[k[0]], version_key(found[k].version), k[1]))
    answered = [r for r in reads if r.states is not None]
    states = {r.name: {(s.folder, s.name): s.state for s in r.states or ()} for r in answered}
    rows = []
    for key in keys:
        by_target = {r.name: states[r.name].get(key) for r in answered}
        rows.append(
            MigrationRow(key[0], found[key].version, key[1], by_target, _majority(by_target))
        )
    return FleetStatus(fleet, shard, tuple(reads), tuple(rows))


def _majority(states: Mapping[str, State | None]) -> State | None:
    counts = Counter(states.values())
    if not counts:
        return None
    most = max(counts.values())
    return next(s for s in states.values() if counts[s] == most)


def exit_code(result: FleetStatus, *, check: bool) -> ExitCode:
    """1 when a target could not be read (the fleet was not seen whole, so it cannot be said
    to agree; CI must tell a database that is down from drift); else 3 when the targets
    disagree, or with ``check`` when a migration is pending, modified, missing, damaged or
    dirty on one; else 0."""
    if result.unread:
        return ExitCode.FAILED
    if not result.agree or (check and result.with_problems()):
        return ExitCode.PROBLEMS
    return ExitCode.OK
