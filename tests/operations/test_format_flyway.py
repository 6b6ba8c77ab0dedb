"""A Flyway folder against a real PostgreSQL server: ``apply`` runs the ``V`` files in Flyway's
order and never an undo file, ``rollback`` and ``emergency`` run the ``U`` file; versions are
recorded as Flyway records them (``1_2`` is ``1.2``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.errors import MalformedMigrationError
from backout.operations import emergency as procedure
from backout.operations.apply import apply
from backout.operations.rollback import rollback
from backout.operations.status import status
from tests.operations.paired_formats import (
    FIXTURES,
    history,
    make_project,
    objects,
    on_the_command_line,
    rows,
    sha256,
    text_sha256,
)
from tests.runner import run
from tests.sample_project import ME

BASIC = FIXTURES / "flyway" / "basic"
FOLDER = "src/main/resources/db/migration"
FILES = [
    ("1", "V1__create_customers", "U1__create_customers"),
    ("1.1", "V1.1__add_customer_email", "U1.1__add_customer_email"),
    ("1.2", "V1_2__create_invoices", "U1_2__create_invoices"),
    ("2", "release_2/V2__add_invoice_customer_index", "release_2/U2__add_invoice_customer_index"),
    ("10", "V10__seed_first_customer", "U10__seed_first_customer"),
]
INVOICES = {("table", "invoices"), ("function", "invoice_total")}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path, "flyway/basic", folder=FOLDER)  # detected


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project, environ={})


@pytest.fixture
def applied(settings: Settings, database_url: str) -> Target:
    target = Target(database_url)
    apply(settings, target, ME)
    return target


def test_apply_runs_the_versioned_files_in_flyway_order_and_no_undo_file(
    applied: Target, database_url: str
) -> None:
    made = objects(database_url)

    assert {
        ("column", "customers.email"),
        *INVOICES,
        ("index", "invoices_customer_idx"),
        ("index", "invoices_total_idx"),
    } <= made
    assert rows(database_url, "SELECT name, email FROM customers") == [("Ada", "ada@example.com")]
    assert history(database_url) == [
        (
            version,
            Path(v).name,
            sha256(BASIC / f"{v}.sql"),
            text_sha256(BASIC / f"{u}.sql"),
        )
        for version, v, u in FILES
    ]


def test_status_and_apply_to_follow_flyway_order(settings: Settings, database_url: str) -> None:
    target = Target(database_url)

    apply(settings, target, ME, to="1_2")

    assert [h[0] for h in history(database_url)] == ["1", "1.1", "1.2"]
    assert [(s.version, s.state.value) for s in status(settings, target)] == [
        ("1", "applied"),
        ("1.1", "applied"),
        ("1.2", "applied"),
        ("2", "pending"),
        ("10", "pending"),
    ]


def test_rollback_runs_the_undo_file_named_by_any_spelling_of_its_version(
    settings: Settings, applied: Target, database_url: str
) -> None:
    rollback(settings, applied, ME, "10")
    assert rows(database_url, "SELECT count(*) FROM customers") == [(0,)]

    rollback(settings, applied, ME, "2")  # executeInTransaction=false: on their own
    assert ("index", "invoices_total_idx") not in objects(database_url)

    rollback(settings, applied, ME, "V1_2")
    assert objects(database_url) & INVOICES == set()
    assert [h[0] for h in history(database_url)] == ["1", "1.1"]


def test_the_emergency_runs_the_undo_file(
    settings: Settings, applied: Target, database_url: str
) -> None:
    rollback(settings, applied, ME, "10")
    rollback(settings, applied, ME, "2")
    request = procedure.Request(reference="1.2", reason="invoices wrong", rehearse=False)

    result = procedure.emergency(settings, applied, ME, request)

    assert result.rolled_back_at is not None
    assert objects(database_url) & INVOICES == set()
    assert [h[0] for h in history(database_url)] == ["1", "1.1"]


def test_on_the_command_line_apply_rollback_and_emergency(
    project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_the_command_line(project, database_url, monkeypatch)

    assert run("apply", "--yes").exit_code == 0
    result = run("rollback", f"{FOLDER}/U10__seed_first_customer.sql", "--yes")
    assert result.exit_code == 0, result.stderr
    assert rows(database_url, "SELECT count(*) FROM customers") == [(0,)]
    result = run("emergency", "2", "--reason", "index bloat", "--yes", "--no-rehearsal")
    assert result.exit_code == 0, result.stderr
    assert ("index", "invoices_customer_idx") not in objects(database_url)
    assert [h[0] for h in history(database_url)] == ["1", "1.1", "1.2"]


def test_a_repeatable_migration_makes_apply_refuse_but_not_rollback(
    project: Path, settings: Settings, database_url: str
) -> None:
    target = Target(database_url)
    apply(settings, target, ME, to="1.1")
    (project / FOLDER / "R__customer_view.sql").write_text(
        "CREATE OR REPLACE VIEW customer_view AS SELECT id, name FROM customers;\n"
    )

    with pytest.raises(MalformedMigrationError) as refused:
        apply(settings, target, ME)
    assert "R__customer_view.sql is a Flyway repeatable migration" in str(refused.value)
    assert [h[0] for h in history(database_url)] == ["1", "1.1"]

    rollback(settings, target, ME, "1.1")
    assert ("column", "customers.email") not in objects(database_url)
    assert ("table", "customer_view") not in objects(database_url)


def test_a_repeatable_migration_never_stops_the_rehearsal_of_a_rollback(
    project: Path,
    settings: Settings,
    applied: Target,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BACKOUT_SCRATCH_DATABASE_URL", database_url)
    (project / FOLDER / "R__customer_view.sql").write_text(
        "CREATE OR REPLACE VIEW customer_view AS SELECT id, name FROM customers;\n"
    )
    request = procedure.Request(reference="10", reason="bad seed", rehearse=True)

    result = procedure.emergency(settings, applied, ME, request)

    assert result.scratch_rehearsal == (
        "applied 5 migrations from 1 folder as recorded on the target, then rolled back "
        "V10__seed_first_customer: passed (and applying it again gave the same schema)"
    )
    assert rows(database_url, "SELECT count(*) FROM customers") == [(0,)]
