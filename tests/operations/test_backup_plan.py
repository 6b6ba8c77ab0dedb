"""The backup planner's rules, in memory: data losses and catalog records in, a plan out.

No database: the records are what :func:`~backout.operations.backup.catalog.read_catalog`
would read (its own tests, against PostgreSQL, are in ``test_backup.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from backout.migrations.statements import DataLoss, LossKind, split
from backout.operations.backup.planning import (
    BackupItem,
    BackupPlan,
    Catalog,
    DependentView,
    Relation,
    plan,
)

JOBS = Relation(
    1,
    "public",
    "jobs",
    columns=("id", "kind", "note", "priority"),
    key=("id",),
    sequences=("id",),
    estimated_rows=3,
)
RUNS = Relation(2, "public", "job_runs", columns=("id", "job_id", "ok"), key=("id",))
STEPS = Relation(3, "public", "steps", columns=("run_id", "n", "done"), key=("run_id", "n"))
TOTALS = Relation(4, "public", "job_totals", kind="m", columns=("kind", "n"), estimated_rows=2)
WEIRD = Relation(5, "public", "Weird Name", columns=("Mixed Case", "select"), estimated_rows=-1)
OLD_JOBS = Relation(6, "archive", "old_jobs", columns=("id",), key=("id",))
OLD_RUNS = Relation(7, "archive", "old_runs", kind="p", columns=("id", "at"))
LEDGER = Relation(8, "public", "ledger", kind="f", columns=("id", "amount"))
QUEUED = DependentView(9, "queued", "v")

RELATIONS = (JOBS, RUNS, STEPS, TOTALS, WEIRD, OLD_JOBS, OLD_RUNS, LEDGER)
TARGETS = {
    "jobs": 1,
    "public.jobs": 1,
    "job_runs": 2,
    "steps": 3,
    "job_totals": 4,
    "Weird Name": 5,
    "ledger": 8,
}


def catalog(
    *,
    schemas: Mapping[str, tuple[int, ...]] | None = None,
    referencing: Mapping[int, tuple[int, ...]] | None = None,
    dependent_views: Mapping[int, tuple[DependentView, ...]] | None = None,
) -> Catalog:
    return Catalog(
        relations={r.oid: r for r in RELATIONS},
        targets=TARGETS,
        schemas=schemas or {},
        referencing=referencing or {},
        dependent_views=dependent_views or {},
    )


def losses(sql: str) -> list[DataLoss]:
    """The data losses PostgreSQL's parser finds in ``sql`` (no server involved)."""
    return [loss for statement in split(sql) for loss in statement.data_loss]


def planned(sql: str, records: Catalog | None = None) -> BackupPlan:
    return plan(losses(sql), records or catalog())


def test_a_dropped_table_is_backed_up_whole_with_its_sequences() -> None:
    result = planned("DROP TABLE jobs")

    assert result == BackupPlan(
        (
            BackupItem(
                table="public.jobs",
                columns=("id", "kind", "note", "priority"),
                key=(),
                reason="DROP TABLE jobs",
                file="01-public.jobs.copy",
                estimated_rows=3,
                sequences=("id",),
            ),
        )
    )
    (item,) = result.items
    assert (item.schema, item.name, item.kind, item.whole) == ("public", "jobs", "r", True)


def test_drop_table_cascade_backs_up_the_materialized_views_and_names_the_views() -> None:
    records = catalog(dependent_views={1: (QUEUED, DependentView(4, "job_totals", "m"))})

    result = planned("DROP TABLE IF EXISTS jobs CASCADE", records)

    assert [(i.table, i.reason, i.kind) for i in result.items] == [
        ("public.jobs", "DROP TABLE jobs CASCADE", "r"),
        ("public.job_totals", "dropped by DROP TABLE jobs CASCADE", "m"),
    ]
    assert result.items[1].file == "02-public.job_totals.copy"
    assert result.items[1].estimated_rows == 2
    assert result.warnings == ("the view queued is dropped by the CASCADE (it holds no data)",)


def test_drop_table_without_cascade_takes_no_view_along() -> None:
    records = catalog(dependent_views={1: (QUEUED, DependentView(4, "job_totals", "m"))})

    result = planned("DROP TABLE jobs", records)

    assert [i.table for i in result.items] == ["public.jobs"]
    assert result.warnings == ()


def test_a_dropped_column_is_backed_up_with_the_primary_key() -> None:
    (item,) = planned("ALTER TABLE jobs DROP COLUMN IF EXISTS priority").items

    assert (item.columns, item.key, item.whole) == (("id", "priority"), ("id",), False)
    assert item.file == "01-public.jobs.columns.copy"
    assert item.reason == "DROP COLUMN jobs.priority"
    assert item.sequences == ()  # only a whole-table restore resets a sequence


def test_a_composite_primary_key_comes_first_in_key_order() -> None:
    (item,) = planned("ALTER TABLE steps DROP COLUMN done").items

    assert (item.columns, item.key) == (("run_id", "n", "done"), ("run_id", "n"))


def test_an_update_backs_up_the_columns_it_sets_in_their_order() -> None:
    (item,) = planned("UPDATE jobs SET note = NULL, kind = 'x' WHERE id = 1").items

    assert (item.columns, item.key, item.reason) == (
        ("id", "note", "kind"),
        ("id",),
        "UPDATE jobs",
    )


def test_a_column_the_table_does_not_have_is_left_out() -> None:
    # A generated column is not among the records' columns: COPY cannot load it back.
    (item,) = planned("ALTER TABLE jobs DROP COLUMN doubled").items

    assert (item.columns, item.key) == (("id",), ("id",))


def test_truncate_cascade_reaches_the_referencing_tables_in_order() -> None:
    result = planned("TRUNCATE jobs CASCADE", catalog(referencing={1: (2, 3)}))

    assert [(i.table, i.reason) for i in result.items] == [
        ("public.jobs", "TRUNCATE jobs CASCADE"),
        ("public.job_runs", "reached by TRUNCATE jobs CASCADE"),
        ("public.steps", "reached by TRUNCATE jobs CASCADE"),
    ]
    assert all(i.whole for i in result.items)


def test_truncate_without_cascade_reaches_nothing_else() -> None:
    result = planned("TRUNCATE jobs", catalog(referencing={1: (2, 3)}))

    assert [i.table for i in result.items] == ["public.jobs"]


def test_delete_backs_up_the_whole_table_and_says_its_where_is_not_evaluated() -> None:
    result = planned("DELETE FROM jobs WHERE id = 1")

    assert [(i.table, i.whole, i.reason) for i in result.items] == [
        ("public.jobs", True, "DELETE FROM jobs")
    ]
    assert result.warnings == (
        "DELETE FROM jobs: its WHERE is not evaluated, the whole table is backed up",
    )


@pytest.mark.parametrize(
    ("sql", "table", "kind"),
    [
        ("DROP MATERIALIZED VIEW job_totals", "public.job_totals", "m"),
        ("DROP FOREIGN TABLE ledger", "public.ledger", "f"),
        ("MERGE INTO jobs USING s ON jobs.id = s.id WHEN MATCHED THEN DELETE", "public.jobs", "r"),
        (
            "INSERT INTO jobs (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET note = 'x'",
            "public.jobs",
            "r",
        ),
        ("WITH gone AS (DELETE FROM jobs RETURNING id) SELECT 1", "public.jobs", "r"),
    ],
)
def test_the_other_row_losses_back_up_the_whole_table(sql: str, table: str, kind: str) -> None:
    (item,) = planned(sql).items

    assert (item.table, item.kind, item.whole) == (table, kind, True)


def test_drop_schema_backs_up_each_of_its_tables() -> None:
    result = planned("DROP SCHEMA archive CASCADE", catalog(schemas={"archive": (6, 7)}))

    assert [(i.table, i.reason, i.kind, i.file) for i in result.items] == [
        ("archive.old_jobs", "DROP SCHEMA archive CASCADE", "r", "01-archive.old_jobs.copy"),
        ("archive.old_runs", "DROP SCHEMA archive CASCADE", "p", "02-archive.old_runs.copy"),
    ]
    assert all(i.whole for i in result.items)
    assert result.warnings == ()


def test_drop_schema_without_tables_is_a_warning() -> None:
    result = planned("DROP SCHEMA empty; DROP SCHEMA missing", catalog(schemas={"empty": ()}))

    assert result == BackupPlan(
        (),
        (
            "schema empty holds no table: nothing to back up",
            "schema missing holds no table: nothing to back up",
        ),
    )


def test_drop_database_is_a_warning_pointing_at_pg_dump() -> None:
    assert planned("DROP DATABASE shop") == BackupPlan(
        (), ("DROP DATABASE shop cannot be backed up here: use pg_dump",)
    )


def test_an_unknown_table_is_a_warning_not_an_error() -> None:
    assert planned("DROP TABLE IF EXISTS gone;\nDROP INDEX IF EXISTS idx;") == BackupPlan(
        (), ("gone does not exist here: nothing to back up for it",)
    )


def test_an_object_whose_data_backout_does_not_know_is_a_warning() -> None:
    (loss,) = losses("DROP TYPE mood CASCADE")

    result = plan([loss], catalog())

    assert (loss.action, loss.object_type) == (LossKind.DROP_OTHER, "TYPE")
    assert result == BackupPlan(
        (), ("DROP TYPE mood CASCADE: not backed up (backout does not know its data)",)
    )


def test_a_column_loss_on_a_table_without_primary_key_takes_the_whole_table() -> None:
    (item,) = planned('ALTER TABLE "Weird Name" DROP COLUMN "select"').items

    assert (item.columns, item.key, item.whole) == (("Mixed Case", "select"), (), True)
    assert (item.table, item.file) == ('public."Weird Name"', "01-public.Weird_Name.copy")
    assert item.estimated_rows == -1


def test_two_column_losses_on_one_table_merge_their_columns() -> None:
    result = planned(
        "UPDATE jobs SET note = NULL;\n"
        "ALTER TABLE public.jobs DROP COLUMN priority, DROP COLUMN note;"
    )

    (item,) = result.items
    assert (item.columns, item.key) == (("id", "note", "priority"), ("id",))
    assert (
        item.reason == "UPDATE jobs; DROP COLUMN public.jobs.priority; DROP COLUMN public.jobs.note"
    )


def test_a_whole_table_loss_after_a_column_loss_takes_the_whole_table() -> None:
    (item,) = planned("UPDATE jobs SET note = NULL;\nTRUNCATE jobs;").items

    assert (item.columns, item.key, item.sequences) == (JOBS.columns, (), ("id",))
    assert item.reason == "UPDATE jobs; TRUNCATE jobs"
    assert item.file == "01-public.jobs.copy"


def test_items_come_in_first_claim_order_and_warnings_once() -> None:
    result = planned(
        "UPDATE jobs SET note = NULL, kind = 'x';\nDROP TABLE job_runs;\n"
        "DELETE FROM jobs;\nDELETE FROM jobs;\nDROP TABLE gone;\nDROP TABLE gone;",
        catalog(),
    )

    assert [(i.table, i.columns, i.reason) for i in result.items] == [
        ("public.jobs", ("id", "kind", "note", "priority"), "UPDATE jobs; DELETE FROM jobs"),
        ("public.job_runs", ("id", "job_id", "ok"), "DROP TABLE job_runs"),
    ]
    assert result.warnings == (
        "DELETE FROM jobs: its WHERE is not evaluated, the whole table is backed up",
        "gone does not exist here: nothing to back up for it",
    )


@pytest.mark.parametrize("kind", list(LossKind))
def test_no_loss_kind_goes_by_silently(kind: LossKind) -> None:
    other = "TYPE" if kind is LossKind.DROP_OTHER else ""
    loss = DataLoss(kind, "jobs", column="note", columns=("note",), object_type=other)

    result = plan([loss], catalog(schemas={"jobs": (1,)}))

    assert result.items or result.warnings
