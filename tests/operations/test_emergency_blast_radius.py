"""The emergency and the blast radius: shown before anything runs, refused when it would
damage later migrations, and, when accepted, recorded in the audit row and the postmortem.
Also across two folders whose migrations depend on each other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.errors import RefusedError
from backout.operations import emergency as procedure
from backout.operations.apply import apply
from backout.operations.status import status
from tests.linked_project import LATER_OBJECTS, linked
from tests.sample_project import BANNER, FAST, ME, rows

LATER = "003_link_orders_to_events"


def _applied(project: Path, target: Target) -> Settings:
    settings = load_settings(project, environ={})
    apply(settings, target, ME, options=FAST)
    return settings


def _request(**more: Any) -> procedure.Request:
    return procedure.Request(reference="001", reason="events broke", no_git=True, **more)


def test_the_dry_run_reports_the_blast_radius_and_changes_nothing(
    project: Path, target: Target, conn: psycopg.Connection[Any]
) -> None:
    settings = _applied(linked(project, cascade=True), target)

    result = procedure.emergency(settings, target, ME, _request(dry_run=True, rehearse=False))

    assert result.blast is not None
    removed = {(r.key.type, r.key.identity) for i in result.blast.impacts for r in i.removes}
    assert removed >= LATER_OBJECTS
    assert set(result.blast.damage()) == {LATER}
    assert rows(conn, "SELECT count(*) FROM schema_migrations") == [(3,)]
    assert not settings.postmortems.exists() or not any(settings.postmortems.glob("INC-*"))


def test_damage_to_a_later_migration_is_refused_before_the_incident_opens(
    project: Path, target: Target, conn: psycopg.Connection[Any]
) -> None:
    settings = _applied(linked(project, cascade=True), target)

    with pytest.raises(RefusedError) as refused:
        procedure.emergency(settings, target, ME, _request(rehearse=False))

    assert f"{LATER} loses" in refused.value.message
    assert f"`backout rollback {LATER}`" in (refused.value.hint or "")
    assert rows(conn, "SELECT count(*) FROM schema_migrations") == [(3,)]
    assert rows(conn, "SELECT to_regclass('event_counts') IS NOT NULL") == [(True,)]
    assert not settings.postmortems.exists() or not any(settings.postmortems.glob("INC-*"))


def test_accepted_damage_is_in_the_audit_row_the_postmortem_and_status(
    project: Path, target: Target, conn: psycopg.Connection[Any]
) -> None:
    settings = _applied(linked(project, cascade=True), target)

    result = procedure.emergency(settings, target, ME, _request(rehearse=False, accept_damage=True))

    assert set(result.accepted_damage) == {LATER}
    (details,) = rows(conn, "SELECT details FROM backout_audit_event WHERE action = 'emergency'")
    assert "view public.event_counts" in details[0]["accepted_damage"][LATER]
    assert result.postmortem is not None
    timeline = " ".join(result.postmortem.read_text().split())
    assert f"damage accepted (--accept-damage): {LATER} loses" in timeline
    assert "blast radius:" in timeline
    states = {s.name: s.state.value for s in status(settings, target)}
    assert states[LATER] == "damaged"


def _two_folders(root: Path) -> Settings:
    """core 001 makes accounts; billing 001 makes invoices with a foreign key to it."""
    (root / "backout.toml").write_text('migrations = ["core", "billing"]\n')
    _file(
        root / "core",
        "001_create_accounts.sql",
        "CREATE TABLE accounts (id BIGINT PRIMARY KEY);",
        "DROP TABLE accounts CASCADE;",
    )
    _file(
        root / "billing",
        "001_create_invoices.sql",
        "CREATE TABLE invoices (id BIGINT PRIMARY KEY,"
        " account_id BIGINT CONSTRAINT invoices_account_fk REFERENCES accounts (id));",
        "DROP TABLE invoices;",
    )
    return load_settings(root, environ={})


def _file(folder: Path, name: str, forward: str, rollback: str) -> None:
    folder.mkdir(exist_ok=True)
    header = f"-- Migration: {name}\n-- Purpose: p\n-- Phase: 1\n-- Checklist: c\n\n"
    block = f"{BANNER}\n-- ROLLBACK\n{BANNER}\n-- To rollback this migration:\n--   {rollback}\n"
    (folder / name).write_text(header + forward + "\n\n" + block)


def test_damage_to_another_folders_migration_is_named_with_that_migration(
    tmp_path: Path, target: Target, conn: psycopg.Connection[Any]
) -> None:
    settings = _two_folders(tmp_path)
    apply(settings, target, ME, options=FAST)
    request = procedure.Request(reference="core/001", reason="r", no_git=True, rehearse=False)

    with pytest.raises(RefusedError) as refused:
        procedure.emergency(settings, target, ME, request)

    message = refused.value.message
    assert (
        "001_create_invoices loses table constraint invoices_account_fk on public.invoices"
        in message
    )
    assert rows(conn, "SELECT to_regclass('accounts') IS NOT NULL") == [(True,)]
