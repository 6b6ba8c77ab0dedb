"""The blast radius of a rollback: what each statement locks, removes and waits for, measured on
the live database before anything runs.

For each statement: the table locks it takes (from its parse tree) with each relation's size
(the planner's estimates: no lock taken), the objects it removes, including everything
``CASCADE`` or an automatic dependency takes along (``pg_depend`` on the live database), with
the migration that created each (recorded when it was applied; for migrations applied before
backout recorded it, read from their parsed SQL), whether it would fail on a dependency, and
the sessions whose locks it would wait behind. :func:`refuse_damage` refuses (exit 4) a rollback
that would remove what other applied migrations created, or fail on a dependency.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from backout.config import Settings
from backout.database.connection import Target
from backout.database.histories.binding import applied_in, history_of
from backout.database.history import NO_TIME
from backout.database.objects import (
    Holder,
    ObjectKey,
    Reached,
    identify,
    lock_holders,
    reach,
    recorded,
    relation_sizes,
    resolve,
)
from backout.errors import BackoutError, RefusedError
from backout.migrations.catalog import Catalog
from backout.migrations.file import MigrationFile
from backout.migrations.locks import LockMode, conflicts, lock_requests
from backout.migrations.objects import ObjectKind, Removal, creations, identity, removals
from backout.migrations.statements import Statement

RELATIONS = (ObjectKind.TABLE, ObjectKind.FOREIGN_TABLE, ObjectKind.MATERIALIZED_VIEW)
"""Objects whose columns go with them."""


@dataclass(frozen=True)
class Lock:
    """A table lock a statement takes, and how big the relation is."""

    relation: str
    mode: LockMode
    rows: int | None = None
    bytes: int | None = None

    def describe(self) -> str:
        size = [] if self.rows is None else [f"~{self.rows} rows"]
        size += [] if self.bytes is None else [_size(self.bytes)]
        return f"{self.mode.sql} on {self.relation}" + (f" ({', '.join(size)})" if size else "")


@dataclass(frozen=True)
class Removed:
    """An object a statement removes: named by it, or taken along by a dependency."""

    key: ObjectKey
    taken_along: bool
    created_by: str | None
    """The migration that created it; None when none is known (made by hand, or earlier)."""

    def describe(self, rolled_back: str) -> str:
        made = self.created_by
        by = "this migration" if made == rolled_back else (made or "no known migration")
        return f"{self.key.describe()} ({'taken along, ' if self.taken_along else ''}{by})"


@dataclass(frozen=True)
class Impact:
    """What one statement touches."""

    line: int
    sql: str
    locks: tuple[Lock, ...]
    removes: tuple[Removed, ...]
    blockers: tuple[Holder, ...]
    failure: str | None = None


@dataclass(frozen=True)
class BlastRadius:
    """What rolling back ``migration`` touches, statement by statement."""

    migration: str
    impacts: tuple[Impact, ...]
    later: tuple[str, ...] = ()
    """The migrations applied after this one (in any folder), in the order applied."""

    def damage(self) -> dict[str, tuple[ObjectKey, ...]]:
        """Later migrations' objects the rollback removes, by migration, newest first."""
        found = self._removed_from(lambda name: name in self.later)
        return {name: found[name] for name in reversed(self.later) if name in found}

    def earlier_losses(self) -> dict[str, tuple[ObjectKey, ...]]:
        """Objects of migrations applied before this one that the rollback removes (its own
        SQL reaches back: shown, not refused)."""
        return self._removed_from(lambda name: name != self.migration and name not in self.later)

    def _removed_from(self, chosen: Callable[[str], bool]) -> dict[str, tuple[ObjectKey, ...]]:
        found: dict[str, list[ObjectKey]] = {}
        for impact in self.impacts:
            for removed in impact.removes:
                made = removed.created_by
                if made is not None and chosen(made):
                    found.setdefault(made, []).append(removed.key)
        return {name: tuple(keys) for name, keys in found.items()}

    @property
    def failures(self) -> tuple[Impact, ...]:
        return tuple(i for i in self.impacts if i.failure is not None)

    def to_json(self) -> dict[str, Any]:
        return {
            "migration": self.migration,
            "statements": [_impact_json(i) for i in self.impacts],
            "damage": {m: [k.describe() for k in keys] for m, keys in self.damage().items()},
            "earlier_losses": {
                m: [k.describe() for k in keys] for m, keys in self.earlier_losses().items()
            },
        }


def measure(
    conn: psycopg.Connection[Any],
    settings: Settings,
    catalog: Catalog,
    migration: MigrationFile,
    statements: Sequence[Statement],
) -> BlastRadius:
    """The blast radius of running ``statements`` to roll back ``migration``; read-only."""
    made = creators(conn, settings, catalog, migration)
    gone: set[ObjectKey] = set()
    impacts = tuple(_impact(conn, s, made, gone) for s in statements)
    return BlastRadius(migration.name, impacts, applied_after(conn, settings, catalog, migration))


def applied_after(
    conn: psycopg.Connection[Any], settings: Settings, catalog: Catalog, migration: MigrationFile
) -> tuple[str, ...]:
    """The applied migrations, in every folder, applied after ``migration`` (all of them when
    it has no history row: ``--assume-applied``), in the order applied."""
    applied: list[tuple[datetime, int, str]] = []
    order = {e.name: i for i, e in enumerate(catalog.entries)}
    for folder in catalog.folders:
        history = applied_in(conn, settings, catalog, folder)
        applied += [
            (a.applied_at or NO_TIME, order.get(a.name, -1), a.name) for a in history.values()
        ]
    mine = next((row[:2] for row in applied if row[2] == migration.name), None)
    later = (row for row in sorted(applied) if mine is None or row[:2] > mine)
    return tuple(name for _, _, name in later if name != migration.name)


def creators(
    conn: psycopg.Connection[Any], settings: Settings, catalog: Catalog, migration: MigrationFile
) -> dict[ObjectKey, str]:
    """Which migration created each object: the applied ones (recorded when applied, or read
    from their SQL) and ``migration`` itself."""
    found: dict[ObjectKey, str] = dict.fromkeys(parsed_creations(migration), migration.name)
    made = recorded(conn)
    for folder in catalog.folders:
        bound = history_of(conn, settings, catalog, folder)
        table = bound.table
        history = bound.read(conn, catalog.in_folder(folder)).applied
        for entry in catalog.in_folder(folder):
            if entry.version is None or entry.version not in history:
                continue
            changes = made.get((table, entry.version))
            keys = _parsed(entry) if changes is None else changes.created
            for key in keys:  # applied in order: the last to create an object made it
                found[key] = entry.name
    return found


def _parsed(entry: Any) -> frozenset[ObjectKey]:
    try:
        return parsed_creations(entry.read())
    except BackoutError:
        return frozenset()


def parsed_creations(migration: MigrationFile) -> frozenset[ObjectKey]:
    """The objects ``migration``'s forward SQL creates, as far as its SQL names them."""
    return frozenset(
        ObjectKey(*identity(obj)) for s in migration.statements for obj in creations(s)
    )


def _impact(
    conn: psycopg.Connection[Any],
    statement: Statement,
    made: Mapping[ObjectKey, str],
    gone: set[ObjectKey],
) -> Impact:
    requests = lock_requests(statement)
    sizes = relation_sizes(conn, [r.relation for r in requests])
    locks = tuple(Lock(r.relation, r.mode, *_known(sizes.get(r.relation))) for r in requests)
    wanted = {r.relation: r.mode for r in requests}
    blockers = tuple(
        h
        for h in lock_holders(conn, list(wanted))
        if h.mode in LockMode.__members__.values()
        and conflicts(LockMode(h.mode), wanted[h.relation])
    )
    removed, failure = _removed(conn, removals(statement), made, gone)
    return Impact(statement.line, _first_words(statement.sql), locks, removed, blockers, failure)


def _known(size: Any) -> tuple[int | None, int | None]:
    return (size.rows, size.bytes) if size is not None else (None, None)


def _removed(
    conn: psycopg.Connection[Any],
    dropped: Iterable[Removal],
    made: Mapping[ObjectKey, str],
    gone: set[ObjectKey],
) -> tuple[tuple[Removed, ...], str | None]:
    """What the drops remove (not already gone), and why the statement would fail, if it would."""
    removed: dict[ObjectKey, Removed] = {}
    failure: str | None = None
    for removal in dropped:
        address = resolve(conn, removal.obj)
        if address is None:
            if not removal.missing_ok and ObjectKey(*identity(removal.obj)) not in gone:
                failure = failure or f"{removal.obj.kind} {removal.obj.name} does not exist"
            continue
        direct = identify(conn, address)
        reached = [r for r in reach(conn, [address]) if r.key not in gone]
        blocked = [r.key for r in reached if r.needs_cascade and not removal.cascade]
        if blocked:
            failure = failure or _dependency_failure(direct, blocked, made)
        for r in reached:
            removed.setdefault(r.key, _one(r, r.key != direct, made))
    for key in list(removed):
        if key.type in RELATIONS:
            for column in (k for k in made if key.owns(k)):
                removed.setdefault(column, Removed(column, True, made[column]))
    gone.update(removed)
    return tuple(sorted(removed.values(), key=lambda r: (r.taken_along, r.key))), failure


def _one(reached: Reached, taken_along: bool, made: Mapping[ObjectKey, str]) -> Removed:
    return Removed(reached.key, taken_along, made.get(reached.key))


def _dependency_failure(
    direct: ObjectKey | None, blocked: Sequence[ObjectKey], made: Mapping[ObjectKey, str]
) -> str:
    what = direct.describe() if direct else "it"
    who = ", ".join(k.describe() + (f" ({made[k]})" if k in made else "") for k in blocked)
    return f"cannot drop {what} because other objects depend on it: {who}"


def refuse_damage(blast: BlastRadius, target: Target, *, accepted: bool) -> dict[str, list[str]]:
    """Refuse (exit 4) a rollback that fails on a dependency, or, unless ``accepted``, removes
    what other applied migrations created; return the damage accepted, for the audit row."""
    damage = blast.damage()
    first = blast.failures[0] if blast.failures else None
    if first is None and (not damage or accepted):
        return {m: [k.describe() for k in keys] for m, keys in damage.items()}
    newest_first = list(damage)
    where = f" --env {target.environment.name}" if target.environment is not None else ""
    commands = "; ".join(f"`backout rollback {name}{where}`" for name in newest_first)
    if first is not None:
        problem = f"line {first.line} would fail: {first.failure}"
    else:
        problem = "it would remove what later migrations created: " + "; ".join(
            f"{m} loses {', '.join(k.describe() for k in damage[m])}" for m in newest_first
        )
    hint = f"roll back the later ones first, newest first: {commands}" if commands else ""
    if first is None:
        hint += "; or pass --accept-damage to go ahead, recorded in the audit row"
    raise RefusedError(
        f"rolling back {blast.migration}: {problem}; nothing was changed",
        hint=hint or "change the rollback SQL with --rollback-file FILE",
    )


def describe(blast: BlastRadius) -> list[str]:
    """The report, one line per fact, for the screen and the incident's timeline. What a drop
    takes along of the rolled-back migration's own objects is counted, not listed (``--json``
    lists it)."""
    lines = [f"blast radius of rolling back {blast.migration}:"]
    for impact in blast.impacts:
        lines.append(f"  line {impact.line}: {impact.sql}")
        lines += [f"    locks {lock.describe()}" for lock in impact.locks]
        own = [r for r in impact.removes if r.taken_along and r.created_by == blast.migration]
        shown = [r for r in impact.removes if r not in own]
        lines += [f"    removes {r.describe(blast.migration)}" for r in shown]
        if own:
            kinds = ", ".join(sorted({r.key.type for r in own}))
            lines.append(f"    and {len(own)} of its own objects that go with them ({kinds})")
        lines += [f"    waits behind {_holder(h)}" for h in impact.blockers]
        if impact.failure:
            lines.append(f"    WOULD FAIL: {impact.failure}")
    for name, keys in blast.damage().items():
        lines.append(f"  damages {name}: {', '.join(k.describe() for k in keys)}")
    for name, keys in blast.earlier_losses().items():
        lines.append(
            f"  also removes what {name} (applied before it) created: "
            f"{', '.join(k.describe() for k in keys)}"
        )
    return lines


def _holder(holder: Holder) -> str:
    held = "holds" if holder.granted else "waits for"
    mode = holder.mode.removesuffix("Lock")
    return f"{holder.session.describe()} ({held} {mode} on {holder.relation})"


def _impact_json(impact: Impact) -> dict[str, Any]:
    return {
        "line": impact.line,
        "sql": impact.sql,
        "locks": [
            {"relation": lk.relation, "mode": lk.mode.sql, "rows": lk.rows, "bytes": lk.bytes}
            for lk in impact.locks
        ],
        "removes": [
            {
                "type": r.key.type,
                "identity": r.key.identity,
                "taken_along": r.taken_along,
                "created_by": r.created_by,
            }
            for r in impact.removes
        ],
        "blocked_by": [_holder_json(h) for h in impact.blockers],
        "failure": impact.failure,
    }


def _holder_json(holder: Holder) -> dict[str, Any]:
    s = holder.session
    return {
        "pid": s.pid,
        "user": s.user,
        "state": s.state,
        "idle_in_transaction": (s.state or "").startswith("idle in transaction"),
        "age_seconds": round(s.waited.total_seconds(), 1) if s.waited is not None else None,
        "query": s.short_query,
        "relation": holder.relation,
        "mode": holder.mode,
        "granted": holder.granted,
    }


def _first_words(sql: str, limit: int = 100) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _size(count: int) -> str:
    size = float(count)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1024:
            return f"{count} bytes" if unit == "bytes" else f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.0f} TB"
