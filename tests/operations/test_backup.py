"""The backup ``emergency`` takes before a rollback: what it plans, and that it restores exactly.

Against PostgreSQL: the catalog reader's records, the plans they make, and round trips through
the files. The planner's rules alone, without a database, are in ``test_backup_plan.py``.
Restores run the commands the manifest gives, with psql, from the backup folder: exactly what
RESTORE.md tells an engineer to do.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.errors import RefusedError
from backout.migrations.statements import split
from backout.operations.backup import (
    BackupError,
    plan_backup,
    read_catalog,
    read_manifest,
    write_backup,
)

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)

SCHEMA = r"""
CREATE TABLE jobs (
  id bigserial PRIMARY KEY,
  kind text NOT NULL,
  payload jsonb,
  note text,
  blob bytea,
  run_after timestamptz,
  priority smallint NOT NULL DEFAULT 0,
  doubled int GENERATED ALWAYS AS (priority * 2) STORED
);
CREATE TABLE job_runs (id serial PRIMARY KEY, job_id bigint REFERENCES jobs (id), ok boolean);
CREATE VIEW queued AS SELECT id FROM jobs;
CREATE TABLE "Weird Name" ("Mixed Case" text, "select" int);
INSERT INTO jobs (kind, payload, note, blob, run_after, priority) VALUES
  ('payout', '{"user": 7}', E'tab\there, newline\nthere, backslash \\ and quote ''', '\x00ff',
   '2026-11-24 03:00:00.123456+00', 5),
  ('digest', NULL, NULL, NULL, NULL, -3),
  ('ünïcode', '[]', 'emoji 🚀', '', 'infinity', 0);
INSERT INTO job_runs (job_id, ok) VALUES (1, true), (2, NULL);
INSERT INTO "Weird Name" VALUES ('a;b', 1), (NULL, NULL);
"""


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        yield conn


def everything(conn: psycopg.Connection[Any], table: str) -> list[tuple[Any, ...]]:
    """Every row as PostgreSQL prints it (so ``infinity`` and bytea compare exactly)."""
    query = f"SELECT r::text FROM {table} AS r ORDER BY 1"
    return conn.execute(query).fetchall()


def restore(url: str, folder: Path) -> None:
    """Run each item's restore commands with psql, in one transaction, from the folder."""
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed: the restore commands are psql scripts")
    script = "\n".join(item.restore for item in read_manifest(folder).items) + "\n"
    subprocess.run(
        [psql, "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"],
        input=script,
        cwd=folder,
        check=True,
        capture_output=True,
        text=True,
    )


def test_the_seeds_rollback_backs_up_the_dropped_table_whole_and_names_the_view(
    conn: psycopg.Connection[Any],
) -> None:
    statements = split(
        "DROP TRIGGER IF EXISTS trg_jobs_updated_at ON jobs;\n"
        "DROP FUNCTION IF EXISTS update_updated_at_column();\n"
        "DROP TABLE IF EXISTS jobs CASCADE;"
    )

    plan = plan_backup(conn, statements)

    (item,) = plan.items
    assert item.table == "public.jobs"
    assert item.columns == ("id", "kind", "payload", "note", "blob", "run_after", "priority")
    assert item.whole
    assert item.estimated_rows == 3
    assert item.reason == "DROP TABLE jobs CASCADE"
    assert any("view public.queued" in w or "view queued" in w for w in plan.warnings)


def test_a_dropped_column_is_backed_up_with_the_primary_key(
    conn: psycopg.Connection[Any],
) -> None:
    plan = plan_backup(conn, split("ALTER TABLE jobs DROP COLUMN IF EXISTS priority;"))

    (item,) = plan.items
    assert (item.columns, item.key) == (("id", "priority"), ("id",))


def test_truncate_cascade_reaches_the_referencing_tables(conn: psycopg.Connection[Any]) -> None:
    plan = plan_backup(conn, split("TRUNCATE jobs CASCADE;"))

    assert [i.table for i in plan.items] == ["public.jobs", "public.job_runs"]


def test_an_update_backs_up_the_columns_it_sets_and_merges_with_a_drop(
    conn: psycopg.Connection[Any],
) -> None:
    plan = plan_backup(
        conn, split("UPDATE jobs SET note = NULL, kind = 'x';\nDROP TABLE job_runs;")
    )

    assert [(i.table, i.columns) for i in plan.items] == [
        ("public.jobs", ("id", "note", "kind")),
        ("public.job_runs", ("id", "job_id", "ok")),
    ]


def test_a_missing_table_is_a_warning_not_an_error(conn: psycopg.Connection[Any]) -> None:
    plan = plan_backup(conn, split("DROP TABLE IF EXISTS gone;\nDROP INDEX IF EXISTS idx;"))

    assert plan.items == ()
    assert plan.warnings == ("gone does not exist here: nothing to back up for it",)


def test_the_catalog_reader_reads_what_the_losses_name(conn: psycopg.Connection[Any]) -> None:
    statements = split(
        "DROP TABLE jobs CASCADE;\nTRUNCATE jobs CASCADE;\nDROP TABLE gone;\n"
        "DROP TYPE mood CASCADE;\nDROP DATABASE shop;"
    )

    records = read_catalog(conn, [loss for s in statements for loss in s.data_loss])

    jobs = records.relations[records.targets["jobs"]]
    assert set(records.targets) == {"jobs"}
    assert (jobs.schema, jobs.name, jobs.kind, jobs.key) == ("public", "jobs", "r", ("id",))
    assert jobs.columns == ("id", "kind", "payload", "note", "blob", "run_after", "priority")
    assert (jobs.sequences, jobs.estimated_rows) == (("id",), 3)
    (runs,) = (records.relations[oid] for oid in records.referencing[jobs.oid])
    assert (runs.name, runs.key, runs.sequences, runs.estimated_rows) == (
        "job_runs",
        ("id",),
        ("id",),
        2,
    )
    assert [(v.name, v.kind) for v in records.dependent_views[jobs.oid]] == [("queued", "v")]
    assert set(records.relations) == {jobs.oid, runs.oid}
    assert records.schemas == {}


def test_the_catalog_reader_lists_a_dropped_schemas_tables(conn: psycopg.Connection[Any]) -> None:
    statements = split("DROP SCHEMA public CASCADE;\nDROP SCHEMA nothing_here;")

    records = read_catalog(conn, [loss for s in statements for loss in s.data_loss])

    assert records.schemas["nothing_here"] == ()
    names = {records.relations[oid].name for oid in records.schemas["public"]}
    assert names == {"jobs", "job_runs", "Weird Name"}
    weird = next(r for r in records.relations.values() if r.name == "Weird Name")
    assert (weird.columns, weird.key) == (("Mixed Case", "select"), ())
    assert records.targets == {}


def test_a_dropped_table_restores_exactly(
    conn: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    before = everything(conn, "jobs"), everything(conn, '"Weird Name"')
    plan = plan_backup(conn, split('DROP TABLE jobs CASCADE;\nDROP TABLE "Weird Name";'))

    manifest = write_backup(conn, plan, tmp_path / "b", now=NOW)
    conn.execute('DROP TABLE jobs CASCADE; DROP TABLE "Weird Name"; DROP TABLE job_runs')
    conn.execute(SCHEMA.split("INSERT INTO jobs")[0].replace("CREATE VIEW", "-- "))  # re-apply
    restore(database_url, tmp_path / "b")

    assert [(i.table, i.rows) for i in manifest.items] == [
        ("public.jobs", 3),
        ('public."Weird Name"', 2),
    ]
    assert (everything(conn, "jobs"), everything(conn, '"Weird Name"')) == before
    # the sequence was reset: a new job does not collide with the restored ones
    assert conn.execute("INSERT INTO jobs (kind) VALUES ('new') RETURNING id").fetchone() == (4,)


def test_a_dropped_column_restores_with_an_update(
    conn: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    before = conn.execute("SELECT id, priority FROM jobs ORDER BY id").fetchall()
    plan = plan_backup(conn, split("ALTER TABLE jobs DROP COLUMN priority CASCADE;"))
    write_backup(conn, plan, tmp_path / "b", now=NOW)
    conn.execute("ALTER TABLE jobs DROP COLUMN priority CASCADE")
    conn.execute("ALTER TABLE jobs ADD COLUMN priority smallint NOT NULL DEFAULT 0")

    restore(database_url, tmp_path / "b")

    assert conn.execute("SELECT id, priority FROM jobs ORDER BY id").fetchall() == before


def test_the_manifest_checksums_match_the_files_and_the_manifest_comes_last(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    plan = plan_backup(conn, split("TRUNCATE jobs CASCADE;"))

    manifest = write_backup(conn, plan, tmp_path / "b", now=NOW)

    folder = tmp_path / "b"
    for item in manifest.items:
        data = (folder / item.file).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (item.sha256, item.bytes)
    sums = (folder / "SHA256SUMS").read_text().splitlines()
    assert sums == [f"{i.sha256}  {i.file}" for i in manifest.items]
    assert read_manifest(folder) == manifest
    assert "sha256sum -c SHA256SUMS" in (folder / "RESTORE.md").read_text()
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_backup_never_overwrites_another(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "01-public.jobs.copy").write_bytes(b"earlier")
    plan = plan_backup(conn, split("DROP TABLE jobs CASCADE;"))

    with pytest.raises(RefusedError, match="not empty"):
        write_backup(conn, plan, folder, now=NOW)

    assert (folder / "01-public.jobs.copy").read_bytes() == b"earlier"


def test_a_table_gone_since_the_plan_is_named_and_nothing_is_written(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    plan = plan_backup(conn, split("DROP TABLE job_runs;"))
    conn.execute("DROP TABLE job_runs")

    with pytest.raises(BackupError, match=r"^the backup of public\.job_runs failed: "):
        write_backup(conn, plan, tmp_path / "b", now=NOW)

    assert not (tmp_path / "b" / "manifest.json").exists()
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
