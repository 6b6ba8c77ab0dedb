"""The survey: where, in a fleet, the migration is applied, read before anything changes.

Read-only and quick (the history table of each target, at most ``concurrency`` at once). A
target where the migration is not applied is skipped, never failed; one an earlier run of the
same rollout already did is "done earlier"; one that cannot be reached stays in the rollout, so
it fails in its wave (and stops the next), named with its redacted URL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NoReturn

import psycopg

from backout.config import Settings
from backout.database.connection import Target, connect
from backout.database.histories.binding import history_of
from backout.database.history import last_rollbacks, table_exists
from backout.errors import BackoutError, RefusedError
from backout.migrations.catalog import Catalog
from backout.migrations.file import MigrationFile
from backout.operations.fleet.engine import one_line

Earlier = Callable[[Target, psycopg.Connection[Any]], str | None]
"""Whether an earlier run of this rollout did the target (said how), given its connection."""


class Presence(StrEnum):
    APPLIED = "applied"
    NOT_APPLIED = "not applied"
    EARLIER = "done earlier"
    UNKNOWN = "unknown"
    """Not reached: it stays in the rollout and fails in its wave."""


@dataclass(frozen=True)
class Found:
    """One target, as the survey found it."""

    target: Target
    presence: Presence
    said: str = ""
    """Why it is skipped or done earlier, or why it could not be read."""


@dataclass(frozen=True)
class Survey:
    """The fleet, target by target, in the fleet's order."""

    found: tuple[Found, ...]

    def to_run(self) -> tuple[Target, ...]:
        """The targets the rollout works on: applied (or not reached), the canary first. The
        canary is the first target known to have the migration applied: a target that could
        not be read is never the canary."""
        todo = [f for f in self.found if f.presence in (Presence.APPLIED, Presence.UNKNOWN)]
        first = next((f for f in todo if f.presence is Presence.APPLIED), None)
        if first is not None:
            todo.remove(first)
            todo.insert(0, first)
        return tuple(f.target for f in todo)

    @property
    def canary(self) -> Target | None:
        """The first target where the migration is known to be applied (None: there is none)."""
        return next((f.target for f in self.found if f.presence is Presence.APPLIED), None)

    def reachable(self) -> Target | None:
        """The first target the survey could read."""
        return next((f.target for f in self.found if f.presence is not Presence.UNKNOWN), None)

    def refuse_none_applied(self, migration: str, fleet: str) -> NoReturn:
        """With no target known to have ``migration`` applied: the first target that could
        not be read (exit 1), or the refusal that it is applied nowhere (exit 4)."""
        unknown = next((f for f in self.found if f.presence is Presence.UNKNOWN), None)
        if unknown is not None:
            raise BackoutError(
                f"{unknown.target.name}: {unknown.said}",
                hint=f"no target of fleet {fleet} is known to have {migration} applied; "
                "nothing was changed",
            )
        raise RefusedError(
            f"{migration} is not applied on any target of fleet {fleet}",
            hint="nothing was changed; `backout status` on a target shows what is applied",
        )

    def left_out(self) -> tuple[Found, ...]:
        """The targets the rollout leaves alone: not applied there, or done earlier."""
        return tuple(
            f for f in self.found if f.presence in (Presence.NOT_APPLIED, Presence.EARLIER)
        )


def survey(
    settings: Settings,
    catalog: Catalog,
    migration: MigrationFile,
    targets: Sequence[Target],
    *,
    earlier: Earlier | None = None,
    concurrency: int = 4,
) -> Survey:
    """Each target's presence, read at most ``concurrency`` at once."""

    def look(target: Target) -> Found:
        try:
            with connect(target.url, autocommit=True) as conn:
                return _presence(settings, catalog, migration, conn, target, earlier)
        except (BackoutError, psycopg.Error) as exc:
            said = exc.message if isinstance(exc, BackoutError) else str(exc)
            return Found(target, Presence.UNKNOWN, one_line(said))

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return Survey(tuple(pool.map(look, targets)))


def _presence(
    settings: Settings,
    catalog: Catalog,
    migration: MigrationFile,
    conn: psycopg.Connection[Any],
    target: Target,
    earlier: Earlier | None,
) -> Found:
    history = history_of(conn, settings, catalog, migration.folder)
    if not table_exists(conn, history.table):
        return Found(target, Presence.NOT_APPLIED, f"not applied: no {history.table} table")
    recorded = history.read(conn, catalog.in_folder(migration.folder))
    if (migration.version or "") in recorded.applied:
        return Found(target, Presence.APPLIED)
    done = earlier(target, conn) if earlier is not None else None
    if done is not None:
        return Found(target, Presence.EARLIER, done)
    rolled = last_rollbacks(conn, settings.audit_table, history.table).get(migration.name)
    if rolled is not None:
        by = f", incident {rolled.incident}" if rolled.incident else ""
        said = f"not applied: rolled back ({rolled.action} {rolled.at:%Y-%m-%d %H:%M} UTC{by})"
        return Found(target, Presence.NOT_APPLIED, said)
    return Found(target, Presence.NOT_APPLIED, "not applied")
