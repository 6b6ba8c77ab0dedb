"""Rehearsals on what the target has: two folders that depend on each other, a real server.

``core/001`` creates ``accounts``; ``billing/001`` creates ``invoices`` with a foreign key to it;
``core/002`` creates a view over ``invoices``, so it only applies after ``billing/001``. The
target gets them in that order, across the folders, as a team would apply them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target, resolve_target
from backout.errors import RefusedError
from backout.migrations.catalog import project_catalog
from backout.migrations.file import MigrationFile
from backout.operations import emergency as procedure
from backout.operations.apply import apply
from backout.operations.approval import Operator
from backout.operations.dry_run import failed
from backout.operations.rehearsal import (
    SCRATCH_ENV,
    recorded_on,
    rehearse,
    rehearse_quietly,
    rehearse_rollback,
)
from backout.operations.rollback import rollback
from tests.pg import Server

ME = Operator("ada")
APPROVED = Operator("ada", approved_by="lead", reason="planned")
BANNER = "-- " + "=" * 76
ACCOUNTS = "core/001_create_accounts.sql"
INVOICES = "billing/001_create_invoices.sql"
TOTALS = "core/002_create_invoice_totals.sql"
DUE_DATE = "billing/002_add_due_date.sql"
CANNOT_DROP = (
    "rollback failed at line 12: cannot drop table accounts because other objects depend on it"
    " (SQLSTATE 2BP01)"
)


def migration(forward: str, rollback_sql: str) -> str:
    header = "-- Migration: m\n-- Purpose: p\n-- Phase: 1\n-- Checklist: c\n\n"
    block = f"{BANNER}\n-- ROLLBACK\n{BANNER}\n-- To rollback this migration:\n"
    return header + forward + "\n\n" + block + f"--   {rollback_sql}\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    files = {
        ACCOUNTS: migration("CREATE TABLE accounts (id int PRIMARY KEY);", "DROP TABLE accounts;"),
        INVOICES: migration(
            "CREATE TABLE invoices (id int PRIMARY KEY, account_id int REFERENCES accounts);",
            "DROP TABLE invoices;",
        ),
        TOTALS: migration(
            "CREATE VIEW invoice_totals AS SELECT account_id, count(*) AS n FROM invoices"
            " GROUP BY account_id;",
            "DROP VIEW invoice_totals;",
        ),
    }
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(exist_ok=True)
        (tmp_path / relative).write_text(text)
    (tmp_path / "backout.toml").write_text(
        'migrations = ["core", "billing"]\n'
        '[environments.production]\nurl_env = "PROD_URL"\nrequire_approval = true\n'
    )
    return tmp_path


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project, environ={})


@pytest.fixture
def scratch_server(postgres_server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Scratch databases on the test server (no embedded server to start); none may be left."""
    monkeypatch.setenv(SCRATCH_ENV, postgres_server.url)
    yield postgres_server.url
    mine = f"backout\\_scratch\\_{os.getpid()}\\_%"
    with psycopg.connect(postgres_server.url) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (mine,))
        assert left.fetchall() == []


@pytest.fixture
def target(settings: Settings, database_url: str, scratch_server: str) -> Target:
    """The database with core 001, billing 001 and core 002 applied, in that order."""
    target = Target(database_url)
    for reference in (ACCOUNTS, INVOICES, TOTALS):
        apply(settings, target, ME, to=reference, cwd=settings.root)
    return target


def parsed(settings: Settings, reference: str) -> MigrationFile:
    return project_catalog(settings).resolve(reference, settings.root).read()


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def test_a_rollback_that_fails_on_the_target_fails_its_rehearsal(
    settings: Settings, target: Target
) -> None:
    request = procedure.Request(
        reference=ACCOUNTS, reason="r", dry_run=True, no_git=True, rehearse=True
    )

    result = procedure.emergency(settings, target, ME, request)

    assert result.scratch_rehearsal == (
        "applied 3 migrations from 2 folders as recorded on the target, then rolled back "
        f"001_create_accounts: failed: {CANNOT_DROP}"
    )
    # the target fails the same way: its dry run stops at the same statement
    assert failed(result.dry_run_lines)
    assert any("cannot drop table accounts" in line for line in result.dry_run_lines)
    # rehearsing core alone, as before, passed: it proved the wrong thing
    assert [v.outcome for v in rehearse(settings, ["001_create_accounts"])] == ["ok"]
    # nothing changed on the target
    assert rows(target.url, "SELECT to_regclass('accounts') IS NOT NULL") == [(True,)]
    assert rows(target.url, "SELECT version FROM schema_migrations ORDER BY 1") == [
        ("001",),
        ("002",),
    ]


def test_the_gate_refuses_a_production_rollback_the_target_would_fail(
    settings: Settings, target: Target
) -> None:
    production = resolve_target(settings, {"PROD_URL": target.url}, env_name="production")
    # dynamic SQL: the blast radius cannot see the drop, the rehearsal must catch it
    dynamic = "DO $$ BEGIN EXECUTE 'DROP TABLE accounts'; END $$;"
    (settings.root / ACCOUNTS).write_text(
        migration("CREATE TABLE accounts (id int PRIMARY KEY);", dynamic)
    )

    with pytest.raises(RefusedError) as refused:
        rollback(
            settings, production, APPROVED, ACCOUNTS, cwd=settings.root, use_current_rollback=True
        )

    assert refused.value.message == (
        "the rehearsal of 001_create_accounts on a scratch database failed: applied 3 "
        "migrations from 2 folders as recorded on the target, then rolled back "
        f"001_create_accounts: failed: {CANNOT_DROP}; nothing was changed on production"
    )
    assert rows(target.url, "SELECT count(*) FROM schema_migrations") == [(2,)]
    assert rows(target.url, "SELECT count(*) FROM backout_audit_event WHERE action <> 'apply'") == [
        (0,)
    ]


def test_the_rehearsal_replays_the_order_recorded_across_folders(
    settings: Settings, target: Target
) -> None:
    totals = parsed(settings, TOTALS)
    with psycopg.connect(target.url, autocommit=True) as conn:
        recorded = recorded_on(settings, project_catalog(settings), conn)
        line = rehearse_quietly(settings, conn, totals)

    assert [(e.folder.name, e.name) for e in recorded.entries] == [
        ("core", "001_create_accounts"),
        ("billing", "001_create_invoices"),
        ("core", "002_create_invoice_totals"),
    ]
    assert line == (
        "applied 3 migrations from 2 folders as recorded on the target, then rolled back "
        "002_create_invoice_totals: passed (and applying it again gave the same schema)"
    )
    # core alone cannot even apply it: invoices is billing's
    alone = {v.migration: v for v in rehearse(settings, ["002_create_invoice_totals"])}
    assert alone["002_create_invoice_totals"].outcome == "failed"
    assert 'relation "invoices" does not exist' in str(alone["002_create_invoice_totals"].error)


def test_ties_in_applied_at_follow_the_folders_order_then_versions(
    settings: Settings, target: Target
) -> None:
    with psycopg.connect(target.url, autocommit=True) as conn:
        for table in ("schema_migrations", "schema_migrations_billing"):
            conn.execute(f"UPDATE {table} SET applied_at = '2026-01-01T00:00:00Z'")
        recorded = recorded_on(settings, project_catalog(settings), conn)

    assert [(e.folder.name, e.name) for e in recorded.entries] == [
        ("core", "001_create_accounts"),
        ("core", "002_create_invoice_totals"),
        ("billing", "001_create_invoices"),
    ]


def test_a_production_rollback_rehearsed_on_what_the_target_has_goes_ahead(
    settings: Settings, target: Target
) -> None:
    production = resolve_target(settings, {"PROD_URL": target.url}, env_name="production")

    outcome = rollback(settings, production, APPROVED, TOTALS, cwd=settings.root)

    assert outcome.done == ["002_create_invoice_totals"]
    assert rows(target.url, "SELECT to_regclass('invoice_totals') IS NULL") == [(True,)]
    assert rows(
        target.url,
        "SELECT details->>'rehearsal' FROM backout_audit_event WHERE action = 'approval'",
    ) == [("passed",)]


def test_rolled_back_migrations_are_not_replayed(settings: Settings, target: Target) -> None:
    rollback(settings, target, ME, TOTALS, cwd=settings.root)
    invoices = parsed(settings, INVOICES)

    with psycopg.connect(target.url, autocommit=True) as conn:
        line = rehearse_quietly(settings, conn, invoices)

    # with the view replayed, DROP TABLE invoices would fail: it depends on it
    assert line == (
        "applied 2 migrations from 2 folders as recorded on the target, then rolled back "
        "001_create_invoices: passed (and applying it again gave the same schema)"
    )


def test_a_recorded_migration_without_its_file_is_named_and_nothing_runs(
    project: Path, settings: Settings, target: Target
) -> None:
    (project / DUE_DATE).write_text(
        migration(
            "ALTER TABLE invoices ADD COLUMN due date;",
            "ALTER TABLE invoices DROP COLUMN due;",
        )
    )
    apply(settings, target, ME)
    (project / DUE_DATE).unlink()
    production = resolve_target(settings, {"PROD_URL": target.url}, env_name="production")

    with psycopg.connect(target.url, autocommit=True) as conn:
        line = rehearse_quietly(settings, conn, parsed(settings, TOTALS))
    with pytest.raises(RefusedError) as refused:
        rollback(settings, production, APPROVED, TOTALS, cwd=settings.root)

    missing = (
        "the target's history lists migrations this checkout has no file for: "
        "billing/002_add_due_date; a scratch database without them would not be the target"
    )
    assert line == f"could not run: {missing}"
    assert refused.value.message == (
        "the rehearsal of 002_create_invoice_totals on a scratch database could not run: "
        f"{missing}; nothing was changed on production"
    )
    assert rows(target.url, "SELECT to_regclass('invoice_totals') IS NOT NULL") == [(True,)]


def test_with_no_history_the_rehearsal_falls_back_to_the_folder_and_says_so(
    settings: Settings, database_url: str, scratch_server: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        line = rehearse_rollback(settings, conn, parsed(settings, ACCOUNTS)).line(
            "001_create_accounts"
        )

    assert line == (
        "the target has no history table for core, so applied core up to it alone, then "
        "rolled back 001_create_accounts: passed (and applying it again gave the same schema)"
    )


def test_a_production_apply_is_rehearsed_on_what_the_target_has_plus_the_pending(
    settings: Settings, database_url: str, scratch_server: str
) -> None:
    target = Target(database_url)
    apply(settings, target, ME, to=ACCOUNTS, cwd=settings.root)
    apply(settings, target, ME, to=INVOICES, cwd=settings.root)
    production = resolve_target(settings, {"PROD_URL": database_url}, env_name="production")

    outcome = apply(settings, production, APPROVED)

    # core 002 alone after core 001 would not apply: the rehearsal had billing 001 first
    assert outcome.done == ["002_create_invoice_totals"]
    assert rows(
        database_url,
        "SELECT details->>'rehearsal' FROM backout_audit_event WHERE action = 'approval'",
    ) == [("passed",)]


def test_a_recorded_migration_that_does_not_replay_stops_the_rehearsal_named(
    project: Path, settings: Settings, target: Target
) -> None:
    (project / TOTALS).write_text(migration("SELECT * FROM nope;", "SELECT 1;"))

    with psycopg.connect(target.url, autocommit=True) as conn:
        line = rehearse_quietly(settings, conn, parsed(settings, INVOICES))

    assert line == (
        "could not run: replaying the target's migrations: 002_create_invoice_totals: apply "
        'failed at line 6: relation "nope" does not exist (SQLSTATE 42P01)'
    )
