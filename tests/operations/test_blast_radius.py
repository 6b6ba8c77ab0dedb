"""The blast radius of a rollback: what it locks, removes and waits for, named before it runs;
and the refusal of a rollback that would damage later migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.database.objects import OBJECTS_TABLE
from backout.errors import RefusedError
from backout.migrations.catalog import project_catalog
from backout.operations.apply import apply
from backout.operations.impact import BlastRadius, measure
from backout.operations.rollback import rollback
from backout.operations.staging_check import staging_check
from backout.operations.status import status
from tests.linked_project import LATER_OBJECTS, linked
from tests.sample_project import FAST, ME, rows, write


def _applied(project: Path, target: Target) -> Settings:
    settings = load_settings(project, environ={})
    apply(settings, target, ME, options=FAST)
    return settings


def _blast_radius(settings: Settings, conn: psycopg.Connection[Any], reference: str) -> BlastRadius:
    catalog = project_catalog(settings)
    migration = catalog.resolve(reference, settings.root).read()
    return measure(conn, settings, catalog, migration, migration.rollback.statements)


def _objects(conn: psycopg.Connection[Any], version: str) -> set[tuple[str, str]]:
    found = rows(conn, f"SELECT type, identity FROM {OBJECTS_TABLE} WHERE version = '{version}'")
    return {(kind, identity) for kind, identity in found}


def test_apply_records_what_each_migration_created(
    project: Path, target: Target, conn: psycopg.Connection[Any]
) -> None:
    _applied(linked(project, cascade=True), target)
    assert ("table", "public.events") in _objects(conn, "001")
    assert ("table column", "public.events.payload") in _objects(conn, "001")
    assert _objects(conn, "003") >= LATER_OBJECTS
    assert ("table", "public.events") not in _objects(conn, "003")
    assert ("function", "public.events_touch()") in _objects(conn, "003")


def test_a_rollback_forgets_what_the_migration_created(
    project: Path, target: Target, conn: psycopg.Connection[Any]
) -> None:
    settings = _applied(linked(project, cascade=True), target)
    rollback(settings, target, ME, "003", options=FAST)
    assert _objects(conn, "003") == set()
    assert _objects(conn, "001")


def test_the_dry_run_names_every_object_a_cascade_takes_and_who_made_it(
    project: Path, target: Target
) -> None:
    settings = _applied(linked(project, cascade=True), target)
    outcome = rollback(settings, target, ME, "001", dry_run=True, options=FAST)
    blast = outcome.plan.blast
    assert blast is not None
    (impact,) = blast.impacts
    assert [(lock.relation, lock.mode.sql) for lock in impact.locks] == [
        ("events", "ACCESS EXCLUSIVE")
    ]
    removed = {(r.key.type, r.key.identity): r.created_by for r in impact.removes}
    assert removed[("table", "public.events")] == "001_create_events"
    for key in LATER_OBJECTS:
        assert removed[key] == "003_link_orders_to_events"
    assert set(blast.damage()) == {"003_link_orders_to_events"}


def test_a_rollback_that_damages_a_later_migration_is_refused_with_nothing_changed(
    project: Path, target: Target, conn: psycopg.Connection[Any]
) -> None:
    settings = _applied(linked(project, cascade=True), target)
    before = rows(conn, "SELECT version FROM schema_migrations ORDER BY 1")
    with pytest.raises(RefusedError) as refused:
        rollback(settings, target, ME, "001", options=FAST)
    message = f"{refused.value.message} {refused.value.hint}"
    assert "003_link_orders_to_events loses" in message
    assert "view public.event_counts" in message
    assert "`backout rollback 003_link_orders_to_events`" in message
    assert "--accept-damage" in message
    assert refused.value.exit_code == 4
    assert rows(conn, "SELECT version FROM schema_migrations ORDER BY 1") == before
    assert rows(conn, "SELECT to_regclass('event_counts') IS NOT NULL") == [(True,)]


def test_a_rollback_that_would_fail_on_a_dependency_is_refused_naming_it(
    project: Path, target: Target, conn: psycopg.Connection[Any]
) -> None:
    settings = _applied(linked(project, cascade=False), target)
    with pytest.raises(RefusedError) as refused:
        rollback(settings, target, ME, "001", options=FAST, accept_damage=True)
    message = refused.value.message
    assert "would fail: cannot drop table public.events" in message
    assert "view public.event_counts (003_link_orders_to_events)" in message
    assert "orders_event_fk on public.orders" in message
    assert rows(conn, "SELECT count(*) FROM schema_migrations") == [(3,)]


def test_accepted_damage_runs_and_is_recorded_in_the_audit_row(
    project: Path, target: Target, conn: psycopg.Connection[Any]
) -> None:
    settings = _applied(linked(project, cascade=True), target)
    rollback(settings, target, ME, "001", options=FAST, accept_damage=True)
    assert rows(conn, "SELECT to_regclass('events'), to_regclass('event_counts')") == [(None, None)]
    (details,) = rows(
        conn,
        "SELECT details FROM backout_audit_event WHERE action = 'rollback' AND outcome = 'success'",
    )
    accepted = details[0]["accepted_damage"]
    assert set(accepted) == {"003_link_orders_to_events"}
    assert "view public.event_counts" in accepted["003_link_orders_to_events"]


def test_the_rollback_of_the_later_migration_first_is_not_refused(
    project: Path, target: Target, conn: psycopg.Connection[Any]
) -> None:
    settings = _applied(linked(project, cascade=False), target)
    rollback(settings, target, ME, "003", options=FAST)
    rollback(settings, target, ME, "001", options=FAST)
    assert rows(conn, "SELECT version FROM schema_migrations") == [("002",)]


def test_sessions_holding_a_conflicting_lock_are_named(
    project: Path, target: Target, database_url: str
) -> None:
    settings = _applied(linked(project, cascade=True), target)
    with psycopg.connect(database_url) as holder:
        holder.execute("SELECT count(*) FROM events")  # ACCESS SHARE, kept: the transaction is open
        pid = holder.info.backend_pid
        with psycopg.connect(database_url, autocommit=True) as conn:
            blast = _blast_radius(settings, conn, "001")
    (impact,) = blast.impacts
    (blocker,) = impact.blockers
    assert blocker.session.pid == pid
    assert blocker.mode == "AccessShareLock"
    assert blocker.granted
    assert blocker.session.state == "idle in transaction"


def test_after_accepted_damage_status_shows_the_later_migration_damaged_naming_its_losses(
    project: Path, target: Target
) -> None:
    settings = _applied(linked(project, cascade=True), target)
    rollback(settings, target, ME, "001", options=FAST, accept_damage=True)
    by_name = {s.name: s for s in status(settings, target)}
    damaged = by_name["003_link_orders_to_events"]
    assert damaged.state.value == "damaged"
    assert {f"{kind} {identity}" for kind, identity in LATER_OBJECTS} <= set(damaged.lost)
    assert "function public.events_touch()" not in damaged.lost  # still there
    assert by_name["002_create_orders"].state.value == "applied"


def test_an_object_dropped_by_hand_marks_its_migration_damaged(
    project: Path, target: Target, conn: psycopg.Connection[Any]
) -> None:
    settings = _applied(linked(project, cascade=True), target)
    conn.execute("DROP VIEW event_counts")
    damaged = {s.name: s.lost for s in status(settings, target) if s.state.value == "damaged"}
    assert damaged == {"003_link_orders_to_events": ("view public.event_counts",)}


def test_what_a_later_migration_removes_on_purpose_is_no_damage(
    project: Path, target: Target
) -> None:
    linked(project, cascade=True)
    write(
        project,
        "004_drop_event_note.sql",
        "ALTER TABLE events DROP COLUMN note;",
        "ALTER TABLE events ADD COLUMN note TEXT;",
    )
    settings = _applied(project, target)
    assert {s.state.value for s in status(settings, target)} == {"applied"}


def test_the_staging_check_fails_while_a_migration_is_damaged(
    project: Path, target: Target
) -> None:
    settings = _applied(linked(project, cascade=True), target)
    rollback(settings, target, ME, "001", options=FAST, accept_damage=True)
    checklist = staging_check(settings, target, "002")
    (item,) = [i for i in checklist.items if i.what == "no applied migration is damaged"]
    assert item.status == "failed"
    assert "003_link_orders_to_events lost" in item.evidence
    assert checklist.failed


def test_what_a_rollback_removes_of_an_earlier_migration_is_shown_not_refused(
    project: Path, target: Target, conn: psycopg.Connection[Any]
) -> None:
    linked(project, cascade=True)
    write(project, "004_index_kind.sql", "CREATE INDEX events_kind ON events (kind);",
          "DROP INDEX events_kind;\nALTER TABLE events DROP COLUMN kind CASCADE;")  # fmt: skip
    settings = _applied(project, target)
    blast = _blast_radius(settings, conn, "004")
    assert blast.damage() == {}
    assert "table column public.events.kind" in [
        k.describe() for k in blast.earlier_losses()["001_create_events"]
    ]
    rollback(settings, target, ME, "004", options=FAST)
    assert rows(conn, "SELECT count(*) FROM schema_migrations") == [(3,)]
