"""The strategy format's real variants against a real PostgreSQL (issue 11, item 3): ``show``
gives each section's exact statements and lines, ``apply`` runs exactly the forward SQL (never
a header remark, a rollback section, a verification block or a rollback script), ``rollback``
and ``emergency`` run exactly the documented rollback, and what must not run is refused with
nothing run. The files are the fixtures in tests/fixtures/formats/strategy/."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.errors import ExitCode, MalformedMigrationError, RefusedError
from backout.migrations.catalog import project_catalog
from backout.operations import emergency as procedure
from backout.operations.apply import apply
from backout.operations.rollback import rollback
from tests.helpers import git_commit
from tests.incident_project import ENGINEER
from tests.runner import run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats" / "strategy"
BILLING = FIXTURES / "billing"
REFUSED = FIXTURES / "refused"
ME = ENGINEER


def make_project(root: Path, source: Path, names: Iterable[str] | None = None) -> Path:
    """``source``'s files (or ``names`` of them) as the ``migrations`` folder of a project read
    in the strategy format."""
    folder = root / "migrations"
    folder.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        if names is None or path.name in names:
            shutil.copyfile(path, folder / path.name)
    (root / "backout.toml").write_text('migrations = ["migrations"]\nformat = "strategy"\n')
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path, BILLING)


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project, environ={})


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query).fetchall()


def execute(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def one(url: str, query: str) -> Any:
    return rows(url, query)[0][0]


def columns(url: str, table: str) -> list[str]:
    query = (
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_name = '{table}' ORDER BY ordinal_position"
    )
    return [r[0] for r in rows(url, query)]


# -- show -----------------------------------------------------------------------------------------


def shown(project: Path, monkeypatch: pytest.MonkeyPatch, reference: str) -> dict[str, Any]:
    monkeypatch.chdir(project)
    result = run("show", reference, "--json")
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_show_gives_the_seed_layout_without_its_verification_queries(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = shown(project, monkeypatch, "001")

    assert data["format"] == "strategy"
    assert [s["line"] for s in data["statements"]] == [11, 17]
    assert data["rollback"] == {
        "statements": [
            {"sql": "DROP FUNCTION IF EXISTS accounts_touch()", "line": 30},
            {"sql": "DROP TABLE IF EXISTS accounts", "line": 31},
        ],
        "notes": ["WARNING: This will delete all account data. Backup before rollback."],
        "source": "comment-block",
    }
    assert data["sections"] == {
        "forward": {"path": "migrations/001_create_accounts.sql", "lines": [11, 24]},
        "rollback": {"path": "migrations/001_create_accounts.sql", "lines": [30, 31]},
    }
    assert data["problems"] == []


def test_show_gives_the_header_one_statement_rollback_and_the_intact_forward(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = shown(project, monkeypatch, "003")

    assert data["statements"] == [
        {"sql": "ALTER TABLE accounts ADD COLUMN plan text NOT NULL DEFAULT 'free'", "line": 11}
    ]
    assert data["rollback"] == {
        "statements": [{"sql": "ALTER TABLE accounts DROP COLUMN IF EXISTS plan", "line": 5}],
        "notes": ["(no data to unwind)"],
        "source": "remark",
    }
    assert data["sections"] == {
        "forward": {"path": "migrations/003_add_accounts_plan.sql", "lines": [11, 11]},
        "rollback": {"path": "migrations/003_add_accounts_plan.sql", "lines": [5, 5]},
    }


@pytest.mark.parametrize(
    ("reference", "forward", "script", "lines"),
    [
        ("007", [7, 12], "007_create_plans_rollback.sql", [4, 4]),
        ("008", [6, 7], "rollback_008_add_accounts_plan_fk.sql", [2, 2]),
        ("010", [7, 18], "010_create_refund_function.down.sql", [2, 2]),
    ],
)
def test_show_names_the_rollback_script_and_its_lines(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    reference: str,
    forward: list[int],
    script: str,
    lines: list[int],
) -> None:
    data = shown(project, monkeypatch, reference)

    assert data["sections"]["forward"]["lines"] == forward
    assert data["sections"]["rollback"] == {"path": f"migrations/{script}", "lines": lines}
    assert data["rollback"]["source"] == "sibling-file"
    assert data["rollback_path"] == f"migrations/{script}"


def test_show_of_a_header_remark_says_there_is_no_rollback_statement(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)

    result = run("show", "002")

    assert (
        "Forward SQL (1 statement)\n  line 7\n    CREATE INDEX idx_accounts_name" in result.stdout
    )
    assert "Rollback SQL (0 statements; remark in this file at line 5;" in result.stdout
    assert "  ! not needed for the index (it goes with the table)" in result.stdout


def test_lint_reports_the_orphan_script_with_its_rule(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)

    result = run("lint", "--json")

    findings = json.loads(result.stdout)["findings"]
    assert {(f["file"], f["rule"]) for f in findings} == {
        ("migrations/002_add_accounts_name_index.sql", "rollback-missing"),
        ("migrations/003_add_accounts_plan.sql", "rollback-data-loss"),
        ("migrations/rollback_2023_cleanup.sql", "orphan-rollback"),
        # lock-safety warnings: accounts exists when these run
        ("migrations/002_add_accounts_name_index.sql", "index-not-concurrent"),
        ("migrations/008_add_accounts_plan_fk.sql", "scan-under-lock"),
    }


# -- apply, rollback, emergency -------------------------------------------------------------------

OBJECTS = (
    "SELECT to_regclass('accounts') IS NOT NULL, to_regclass('invoices') IS NOT NULL, "
    "to_regclass('payments') IS NOT NULL, to_regclass('plans') IS NOT NULL, "
    "to_regclass('invoice_totals') IS NOT NULL, to_regclass('idx_accounts_name') IS NOT NULL, "
    "to_regclass('idx_payments_invoice') IS NOT NULL, "
    "to_regprocedure('refund_payment(bigint)') IS NOT NULL, "
    "to_regprocedure('accounts_touch()') IS NOT NULL, "
    "EXISTS (SELECT FROM pg_constraint WHERE conname = 'accounts_plan_fk')"
)


def test_apply_runs_exactly_the_forward_sql_of_every_variant(
    settings: Settings, database_url: str
) -> None:
    execute(database_url, "CREATE TABLE legacy_invoices (id int)")  # the orphan script drops it

    apply(settings, Target(database_url), ME)

    assert rows(database_url, OBJECTS) == [(True,) * 10]
    assert columns(database_url, "accounts") == ["id", "name", "note", "plan", "country"]
    assert columns(database_url, "invoices") == [
        "id",
        "account_id",
        "period",
        "total_cents",
        "due_on",
    ]
    assert one(database_url, "SELECT string_agg(code, ',' ORDER BY code) FROM plans") == "free,pro"
    assert one(database_url, "SELECT to_regclass('legacy_invoices') IS NOT NULL") is True
    history = dict(rows(database_url, "SELECT name, rollback_checksum FROM schema_migrations"))
    catalog = project_catalog(settings)
    assert history == {e.name: e.read().rollback.checksum for e in catalog.entries}
    assert len(history) == 11


def test_rollback_runs_exactly_each_documented_rollback_in_turn(
    settings: Settings, database_url: str
) -> None:
    target = Target(database_url)
    apply(settings, target, ME)
    checks = {
        "011": ("accounts", ["id", "name", "note", "plan"]),
        "010": ("SELECT to_regprocedure('refund_payment(bigint)') IS NULL", True),
        "009": ("SELECT to_regclass('invoice_totals') IS NULL", True),
        "008": (
            "SELECT NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'accounts_plan_fk')",
            True,
        ),
        "007": ("SELECT to_regclass('plans') IS NULL", True),
        "006": ("invoices", ["id", "account_id", "period", "total_cents"]),
        "005": ("SELECT to_regclass('payments') IS NULL", True),
        "004": ("SELECT to_regclass('invoices') IS NULL", True),
        "003": ("accounts", ["id", "name", "note"]),
    }

    for version, (what, expected) in checks.items():
        rollback(settings, target, ME, version)

        found = (
            one(database_url, what) if what.startswith("SELECT") else columns(database_url, what)
        )
        assert found == expected, version

    with pytest.raises(RefusedError, match="002_add_accounts_name_index documents no rollback"):
        rollback(settings, target, ME, "002")
    # 002's index goes with 001's table, and 002 cannot be rolled back first: accepted.
    with pytest.raises(RefusedError, match="002_add_accounts_name_index loses index"):
        rollback(settings, target, ME, "001")
    rollback(settings, target, ME, "001", accept_damage=True)
    assert one(database_url, "SELECT to_regclass('accounts') IS NULL") is True
    assert rows(database_url, "SELECT version FROM schema_migrations") == [("002",)]


def test_a_rollback_dry_run_lists_exactly_the_statements_of_the_section(
    tmp_path: Path, database_url: str
) -> None:
    settings = load_settings(
        make_project(tmp_path, BILLING, ["001_create_accounts.sql"]), environ={}
    )
    target = Target(database_url)
    apply(settings, target, ME)

    planned = rollback(settings, target, ME, "001", dry_run=True)

    assert planned.done == [
        "ok      line 30: DROP FUNCTION IF EXISTS accounts_touch()",
        "ok      line 31: DROP TABLE IF EXISTS accounts",
    ]


@pytest.mark.parametrize(
    ("version", "done"),
    [
        ("009", "ok      line 12: DROP VIEW IF EXISTS invoice_totals"),
        ("010", "ok      line 2: DROP FUNCTION IF EXISTS refund_payment(bigint)"),
    ],
)
def test_a_rollback_dry_run_of_a_banner_heading_and_of_a_down_script(
    settings: Settings, database_url: str, version: str, done: str
) -> None:
    target = Target(database_url)
    apply(settings, target, ME)

    assert rollback(settings, target, ME, version, dry_run=True).done == [done]


def committed(root: Path, names: Iterable[str] | None = None) -> Settings:
    make_project(root, BILLING, names)
    files = {str(p.relative_to(root)): p.read_text() for p in root.rglob("*.*")}
    git_commit(root, files, "Add the billing migrations", at="2026-11-20T10:00:00+00:00")
    return load_settings(root, environ={})


def emergency(settings: Settings, target: Target, reference: str) -> procedure.Result:
    request = procedure.Request(reference=reference, reason="invoices stuck", rehearse=False)
    return procedure.emergency(settings, target, ME, request)


def test_emergency_runs_the_qualified_section_and_nothing_after_it(
    tmp_path: Path, database_url: str
) -> None:
    settings = committed(tmp_path)
    target = Target(database_url)
    apply(settings, target, ME)

    result = emergency(settings, target, "011")

    assert columns(database_url, "accounts") == ["id", "name", "note", "plan"]
    assert one(database_url, "SELECT count(*) FROM schema_migrations WHERE version = '011'") == 0
    assert one(database_url, "SELECT count(*) FROM schema_migrations") == 10
    assert result.postmortem is not None
    text = result.postmortem.read_text()
    assert "ran line 9: ALTER TABLE accounts DROP COLUMN IF EXISTS country" in text


def test_emergency_runs_the_one_statement_rollback_of_a_header_remark(
    tmp_path: Path, database_url: str
) -> None:
    names = (
        "001_create_accounts.sql",
        "002_add_accounts_name_index.sql",
        "003_add_accounts_plan.sql",
    )
    settings = committed(tmp_path, names)
    target = Target(database_url)
    apply(settings, target, ME)

    emergency(settings, target, "003")

    assert columns(database_url, "accounts") == ["id", "name", "note"]
    assert one(database_url, "SELECT to_regclass('idx_accounts_name') IS NOT NULL") is True
    versions = rows(database_url, "SELECT version FROM schema_migrations ORDER BY version")
    assert versions == [("001",), ("002",)]


# -- refused --------------------------------------------------------------------------------------

REFUSALS = {
    "101_create_ledger.sql": (11, "rollback-double-comment"),
    "102_add_ledger_index.sql": (13, "rollback-outside-section"),
    "103_add_ledger_memo.sql": (5, "rollback-outside-section"),
    "104_purge_test_ledger_rows.sql": (12, "rollback-unparseable"),
}


@pytest.mark.parametrize(("name", "refusal"), REFUSALS.items(), ids=REFUSALS.keys())
def test_apply_refuses_what_must_not_run_naming_the_line_and_runs_nothing(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    refusal: tuple[int, str],
) -> None:
    project = make_project(tmp_path, REFUSED, [name])
    line, rule = refusal

    with pytest.raises(MalformedMigrationError, match=rf"{name}:{line}: {rule}: "):
        apply(load_settings(project, environ={}), Target(database_url), ME)
    monkeypatch.chdir(project)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    result = run("apply", "--yes")

    assert result.exit_code == ExitCode.USAGE
    assert f"migrations/{name}:{line}: {rule}: " in result.stderr
    assert result.stderr.count("\n") == 1
    nothing = (
        "SELECT to_regclass('ledger_2025') IS NULL AND to_regclass('ledger_test') IS NULL "
        "AND to_regclass('schema_migrations') IS NULL"
    )
    assert one(database_url, nothing) is True


def test_rollback_and_emergency_refuse_a_section_changed_to_hold_a_doubly_commented_step(
    tmp_path: Path, database_url: str
) -> None:
    settings = committed(tmp_path, ["001_create_accounts.sql", "011_add_accounts_country.sql"])
    target = Target(database_url)
    apply(settings, target, ME)
    path = tmp_path / "migrations/011_add_accounts_country.sql"
    path.write_text(
        path.read_text().replace("--   1. ALTER", "-- -- (drop the tax view first)\n--   1. ALTER")
    )

    with pytest.raises(
        MalformedMigrationError, match=r"011_add_accounts_country.sql:9: rollback-double-comment: "
    ):
        rollback(settings, target, ME, "011", use_current_rollback=True)
    with pytest.raises(
        MalformedMigrationError, match=r"011_add_accounts_country.sql:9: rollback-double-comment: "
    ):
        emergency(settings, target, "011")

    assert columns(database_url, "accounts") == ["id", "name", "note", "country"]
    assert one(database_url, "SELECT count(*) FROM schema_migrations") == 2
