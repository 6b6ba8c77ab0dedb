"""What to back up before a rollback destroys data: the rules, as a pure function.

:func:`plan` takes the data losses the rollback's statements name and the catalog records
:func:`~backout.operations.backup.catalog.read_catalog` read for them, and decides: a dropped,
truncated or deleted-from table is backed up whole; a dropped or updated column with the table's
primary key, so it can be put back with an ``UPDATE ... FROM`` (a table without a primary key is
backed up whole); ``TRUNCATE ... CASCADE`` reaches the tables that reference the truncated ones;
``DROP TABLE ... CASCADE`` the materialized views built on the table; ``DROP SCHEMA ... CASCADE``
every table in the schema. What cannot be backed up here becomes a warning. No database, no
files: records in, a :class:`BackupPlan` out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pglast.stream import maybe_double_quote_name

from backout.migrations.statements import DataLoss, LossKind


@dataclass(frozen=True)
class Relation:
    """A table (partitioned, materialized or foreign too), as backing it up needs it."""

    oid: int
    schema: str
    name: str
    kind: str = "r"
    """``pg_class.relkind``: ``r`` table, ``p`` partitioned, ``m`` materialized view, ``f``."""
    columns: tuple[str, ...] = ()
    """Its columns in order, without the generated ones (COPY cannot load those)."""
    key: tuple[str, ...] = ()
    """Its primary key's columns in key order; ``()`` without a primary key."""
    sequences: tuple[str, ...] = ()
    """Columns fed by a sequence (serial, identity), in column order."""
    estimated_rows: int = -1
    """From the planner's statistics, or counted for a small table never analysed; -1 when
    unknown."""


@dataclass(frozen=True)
class DependentView:
    """A view or materialized view built on a table, which ``DROP TABLE ... CASCADE`` drops."""

    oid: int
    name: str
    """As ``regclass`` prints it: schema-qualified only when off the search path."""
    kind: str
    """``v`` view (no data of its own) or ``m`` materialized view."""


@dataclass(frozen=True)
class Catalog:
    """What the catalog says about the objects some data losses name."""

    relations: Mapping[int, Relation] = field(default_factory=dict)
    """Every relation the other fields name, by oid."""
    targets: Mapping[str, int] = field(default_factory=dict)
    """A loss's target as parsed (``public.jobs``, ``jobs``) to the relation it names here;
    absent when it names none."""
    schemas: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """A dropped schema to its tables (partitions excluded), by name."""
    referencing: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    """A truncated table to every table a chain of foreign keys ties to it."""
    dependent_views: Mapping[int, tuple[DependentView, ...]] = field(default_factory=dict)
    """A dropped table to the views and materialized views built on it."""


@dataclass(frozen=True)
class BackupItem:
    """One object to back up."""

    table: str
    """Schema-qualified and quoted as SQL needs it: ``public.jobs``, ``public."Weird Name"``."""
    columns: tuple[str, ...]
    """The columns copied, in order (never empty)."""
    key: tuple[str, ...]
    """The primary-key columns among them when only some columns are backed up, else ``()``."""
    reason: str
    file: str
    estimated_rows: int
    """From the planner's statistics, or counted for a small table never analysed; -1 when
    unknown."""
    sequences: tuple[str, ...] = ()
    """Columns fed by a sequence (serial, identity): restoring resets the sequence."""
    schema: str = field(default="", compare=False)
    name: str = field(default="", compare=False)
    kind: str = field(default="r", compare=False)
    """``pg_class.relkind``: ``r`` table, ``p`` partitioned, ``m`` materialized view, ``f``."""

    @property
    def whole(self) -> bool:
        return not self.key


@dataclass(frozen=True)
class BackupPlan:
    items: tuple[BackupItem, ...]
    warnings: tuple[str, ...] = ()


WHOLE_TABLE = frozenset(
    {
        LossKind.DROP_TABLE,
        LossKind.DROP_MATERIALIZED_VIEW,
        LossKind.DROP_FOREIGN_TABLE,
        LossKind.TRUNCATE,
        LossKind.DELETE,
        LossKind.MERGE,
        LossKind.UPSERT,
    }
)
"""Losses backed up as the whole table they name."""
SOME_COLUMNS = frozenset({LossKind.DROP_COLUMN, LossKind.UPDATE})
"""Losses backed up as the columns they name, with the primary key."""


def names_a_table(action: LossKind) -> bool:
    """Whether a loss's target is a table the planner backs up (not a schema, a database...)."""
    return action in WHOLE_TABLE or action in SOME_COLUMNS


def quoted(name: str) -> str:
    """``name`` as an SQL identifier for people and psql scripts: quoted only when it must be."""
    return str(maybe_double_quote_name(name))


@dataclass(frozen=True)
class _Want:
    """One loss's claim on a relation: some columns, or the whole of it (``None``)."""

    oid: int
    columns: tuple[str, ...] | None
    reason: str


@dataclass
class _Wanted:
    """Every claim on one relation so far, merged."""

    relation: Relation
    reasons: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    whole: bool = False


def plan(losses: Iterable[DataLoss], catalog: Catalog) -> BackupPlan:
    """What to back up before ``losses`` happen, given what ``catalog`` says about them.

    Items come in the order the losses first claim them; warnings once each, in order.
    """
    wanted: dict[int, _Wanted] = {}
    warnings: list[str] = []
    for loss in losses:
        wants, warned = _plan_loss(loss, catalog)
        for want in wants:
            _merge(wanted, catalog.relations[want.oid], want)
        warnings += warned
    items = tuple(_item(n, w) for n, w in enumerate(wanted.values(), start=1))
    return BackupPlan(items, tuple(dict.fromkeys(warnings)))


def _plan_loss(loss: DataLoss, catalog: Catalog) -> tuple[list[_Want], list[str]]:
    if loss.action == LossKind.DROP_SCHEMA:
        return _drop_schema(loss, catalog)
    if loss.action == LossKind.DROP_DATABASE:
        return [], [f"DROP DATABASE {loss.target} cannot be backed up here: use pg_dump"]
    if not names_a_table(loss.action):
        return [], [f"{loss.describe()}: not backed up (backout does not know its data)"]
    oid = catalog.targets.get(loss.target)
    if oid is None:
        return [], [f"{loss.target} does not exist here: nothing to back up for it"]
    wants = [_Want(oid, _lost_columns(loss), loss.describe())]
    if loss.action == LossKind.DELETE:
        return wants, [
            f"DELETE FROM {loss.target}: its WHERE is not evaluated, the whole table is backed up"
        ]
    if loss.action == LossKind.TRUNCATE and loss.cascade:
        reason = f"reached by TRUNCATE {loss.target} CASCADE"
        return wants + [_Want(ref, None, reason) for ref in catalog.referencing.get(oid, ())], []
    if loss.action == LossKind.DROP_TABLE and loss.cascade:
        return _drop_table_cascade(loss, wants, catalog.dependent_views.get(oid, ()))
    return wants, []


def _drop_table_cascade(
    loss: DataLoss, wants: list[_Want], views: Iterable[DependentView]
) -> tuple[list[_Want], list[str]]:
    """A materialized view built on the table goes with it and is backed up; a view is named."""
    warnings: list[str] = []
    for view in views:
        if view.kind == "m":
            reason = f"dropped by DROP TABLE {loss.target} CASCADE"
            wants = [*wants, _Want(view.oid, None, reason)]
        else:
            warnings.append(f"the view {view.name} is dropped by the CASCADE (it holds no data)")
    return wants, warnings


def _drop_schema(loss: DataLoss, catalog: Catalog) -> tuple[list[_Want], list[str]]:
    tables = catalog.schemas.get(loss.target, ())
    if not tables:
        return [], [f"schema {loss.target} holds no table: nothing to back up"]
    return [_Want(oid, None, loss.describe()) for oid in tables], []


def _lost_columns(loss: DataLoss) -> tuple[str, ...] | None:
    """The columns a loss destroys, or ``None`` when it destroys whole rows or the table."""
    if loss.action == LossKind.DROP_COLUMN:
        return (loss.column or "",)
    if loss.action == LossKind.UPDATE:
        return loss.columns
    return None


def _merge(wanted: dict[int, _Wanted], relation: Relation, want: _Want) -> None:
    entry = wanted.setdefault(relation.oid, _Wanted(relation))
    entry.reasons.append(want.reason)
    # Without a primary key, columns cannot be matched back to their rows: take the table.
    if want.columns is None or not relation.key:
        entry.whole = True
    else:
        entry.columns += [c for c in want.columns if c and c not in entry.columns]


def _item(number: int, wanted: _Wanted) -> BackupItem:
    r = wanted.relation
    columns: tuple[str, ...]
    key: tuple[str, ...]
    if wanted.whole:
        columns, key = r.columns, ()
    else:
        chosen = [c for c in wanted.columns if c not in r.key and c in r.columns]
        columns, key = r.key + tuple(chosen), r.key
    # Only a whole-table restore refills a sequence's column, so only then is it reset.
    sequences = tuple(c for c in r.sequences if c in columns) if wanted.whole else ()
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{r.schema}.{r.name}")[:80]
    return BackupItem(
        table=f"{quoted(r.schema)}.{quoted(r.name)}",
        columns=columns,
        key=key,
        reason="; ".join(dict.fromkeys(wanted.reasons)),
        file=f"{number:02d}-{safe}{'' if wanted.whole else '.columns'}.copy",
        estimated_rows=r.estimated_rows,
        sequences=sequences,
        schema=r.schema,
        name=r.name,
        kind=r.kind,
    )
