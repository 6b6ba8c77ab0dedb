"""dbmate migrations against a real PostgreSQL: ``apply`` runs the up sections only,
``rollback`` and ``emergency`` the down section. The database is checked, not what backout
printed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.errors import RefusedError
from backout.migrations.catalog import project_catalog
from backout.operations import emergency as procedure
from backout.operations.apply import apply
from backout.operations.rollback import rollback
from tests.incident_project import ENGINEER as ME
from tests.operations.test_format_goose import all_rows, columns, committed, one

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats" / "dbmate"
TRACE = """-- migrate:up
CREATE TABLE traced (id int);

-- migrate:down
CREATE TABLE down_ran (id int);
DROP TABLE traced;
"""
"""A migration whose down section would leave a table behind if it ever ran."""
CONFIG = 'formats = {"db/migrations" = "dbmate"}\n'


def project_with(root: Path, fixtures: str) -> Path:
    return committed(root, FIXTURES / fixtures, {"20991231000000_trace.sql": TRACE}, CONFIG)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(project_with(tmp_path, "migrations"), environ={})


def test_apply_runs_the_up_sections_only(settings: Settings, database_url: str) -> None:
    apply(settings, Target(database_url), ME)

    url = database_url
    assert columns(url, "customers") == ["id", "name", "email"]
    assert columns(url, "orders") == ["id", "customer_id", "total_cents", "note"]
    assert one(url, "SELECT to_regclass('orders_customer') IS NOT NULL")
    assert one(url, "SELECT to_regclass('traced') IS NOT NULL")
    assert one(url, "SELECT to_regclass('down_ran') IS NULL")  # no down section ever ran
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO customers (name) VALUES ('Ada')")
        conn.execute("INSERT INTO orders (customer_id, total_cents) VALUES (1, 250), (1, 100)")
    assert one(url, "SELECT customer_total(1)") == 350


def test_apply_records_each_file_in_the_history(settings: Settings, database_url: str) -> None:
    apply(settings, Target(database_url), ME)

    expected = sorted(
        (m.version, hashlib.sha256(m.path.read_bytes()).hexdigest(), m.rollback.checksum)
        for m in (e.read() for e in project_catalog(settings).entries)
    )
    history = all_rows(
        database_url, "SELECT version, checksum, rollback_checksum FROM schema_migrations"
    )
    assert sorted(history) == expected
    assert len(expected) == 7


def test_rollback_runs_the_down_section_and_removes_the_history_row(
    settings: Settings, database_url: str
) -> None:
    target = Target(database_url)
    apply(settings, target, ME)

    rollback(settings, target, ME, "20991231000000")
    rollback(settings, target, ME, "20240305070000")
    rollback(settings, target, ME, "20240303120000")  # transaction:false, CONCURRENTLY

    assert one(database_url, "SELECT to_regclass('traced') IS NULL")
    assert one(database_url, "SELECT to_regclass('down_ran') IS NOT NULL")  # it runs now
    assert "email" not in columns(database_url, "customers")
    assert one(database_url, "SELECT to_regclass('orders_customer') IS NULL")
    assert one(database_url, "SELECT count(*) FROM schema_migrations") == 4


def test_an_empty_down_section_is_refused_as_no_rollback(
    settings: Settings, database_url: str
) -> None:
    target = Target(database_url)
    apply(settings, target, ME)

    with pytest.raises(RefusedError, match="20240304080000_orders_note documents no rollback"):
        rollback(settings, target, ME, "20240304080000")

    assert "note" in columns(database_url, "orders")


def test_emergency_runs_the_down_section(settings: Settings, database_url: str) -> None:
    target = Target(database_url)
    apply(settings, target, ME)

    request = procedure.Request(
        reference="20240302090000", reason="totals are wrong", rehearse=False
    )
    procedure.emergency(settings, target, ME, request)

    assert one(database_url, "SELECT to_regproc('customer_total') IS NULL")
    assert (
        one(database_url, "SELECT count(*) FROM schema_migrations WHERE version = '20240302090000'")
        == 0
    )
    assert all_rows(
        database_url, "SELECT action, outcome FROM backout_audit_event ORDER BY id DESC LIMIT 1"
    ) == [("emergency", "success")]


def test_markers_inside_strings_and_bodies_are_applied_as_data(
    tmp_path: Path, database_url: str
) -> None:
    settings = load_settings(project_with(tmp_path, "traps"), environ={})
    target = Target(database_url)

    apply(settings, target, ME)

    assert one(database_url, "SELECT body FROM help_texts") == (
        "Sections start with\n-- migrate:down\nand run to the end of the file."
    )
    assert one(database_url, "SELECT help_template()") == "-- migrate:up\nDROP TABLE x;"
    rollback(settings, target, ME, "20240101000100")
    assert one(database_url, "SELECT to_regproc('help_template') IS NULL")
