"""Liquibase formatted SQL on a real PostgreSQL: ``apply`` runs each changeset's SQL and never its
rollback lines; ``rollback`` and ``emergency`` run exactly one changeset's rollback, named by its
id or ``author:id``; what the reader refuses never runs. The database is checked, not the output.

The fixtures are tests/fixtures/formats/liquibase/ (see tests/migrations/formats/test_liquibase.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.errors import ExitCode, RefusedError
from backout.migrations.catalog import project_catalog
from backout.operations.apply import apply
from backout.operations.approval import Operator
from backout.operations.rollback import rollback
from backout.postmortems.front_matter import read_front_matter
from tests.runner import run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures/formats/liquibase"
ME = Operator("tester")
CATALOG_HISTORY = "schema_migrations_catalog"


def one(url: str, query: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
        return row[0] if row else None


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def relations(url: str) -> set[str]:
    """Every table, view, index and function of the public schema (backout's own included)."""
    query = (
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' UNION "
        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'public'"
    )
    return {name for (name,) in rows(url, query)}


def history(url: str, table: str = "schema_migrations") -> list[tuple[str, str]]:
    return [(v, n) for v, n in rows(url, f"SELECT version, name FROM {table} ORDER BY version")]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """``db``: the numbered files, detected; ``catalog``: the one changelog, configured."""
    shutil.copytree(FIXTURES / "numbered", tmp_path / "db")
    shutil.copytree(FIXTURES / "changelog", tmp_path / "catalog")
    (tmp_path / "backout.toml").write_text(
        'migrations = ["db", "catalog"]\n[formats]\n"catalog" = "liquibase"\n'
    )
    return tmp_path


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project, environ={})


@pytest.fixture
def applied(settings: Settings, database_url: str) -> Target:
    target = Target(database_url)
    apply(settings, target, ME)
    return target


@pytest.fixture
def cli(project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(project)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS"):
        monkeypatch.delenv(name, raising=False)
    return project


def test_apply_runs_every_changesets_sql_and_never_a_rollback_line(
    settings: Settings, applied: Target
) -> None:
    url = applied.url
    made = relations(url)

    # the rollbacks drop these: had one run, they would be gone
    assert {"accounts", "ledger_entries", "ledger_kinds", "products", "product_prices"} <= made
    assert {"accounts_owner", "ledger_entries_account", "touch_product", "price_band"} <= made
    # changeset ben:8 drops the view ben:7 made; its rollback (ben:7's SQL) would make it again
    assert "cheap_products" not in made
    # dbms:oracle and ignore:true are not run on PostgreSQL
    assert not {"products_ora", "never_here"} & made
    assert one(url, "SELECT count(*) FROM ledger_kinds") == 2
    assert one(url, "SELECT owner FROM accounts") == "house"
    assert one(url, "SELECT count(*) FROM pg_trigger WHERE tgname = 'products_touch'") == 1
    # runInTransaction:false: CREATE INDEX CONCURRENTLY ran outside a transaction, and finished
    valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ledger_entries_amount'::regclass"
    assert one(url, valid) is True
    assert history(url) == [
        ("001.01", "001-create-accounts::create-accounts::maria"),
        ("001.02", "001-create-accounts::accounts-owner-index::maria"),
        ("002.01", "002-ledger::create-ledger::tomas"),
        ("002.02", "002-ledger::ledger-kinds::tomas"),
        ("002.03", "002-ledger::ledger-note-column::tomas"),
        ("002.04", "002-ledger::seed-reference-account::tomas"),
        ("003.01", "003-concurrent-index::ledger-amount-index::ines"),
    ]
    assert [v for v, _ in history(url, CATALOG_HISTORY)] == [
        "0.1.01", "0.1.02", "0.1.03", "0.1.04", "0.1.07", "0.1.08", "0.1.09",
    ]  # fmt: skip
    # each row carries its changeset's checksums, not the file's
    query = "SELECT version, checksum, rollback_checksum FROM schema_migrations"
    recorded = {v: (c, r) for v, c, r in rows(url, query)}
    for entry in project_catalog(settings).in_folder(settings.migrations[0]):
        m = entry.read()
        assert recorded[m.version or ""] == (m.checksum, m.rollback.checksum), m.name
    assert len({c for c, _ in recorded.values()}) == len(recorded)


def test_rollback_by_id_runs_that_changesets_rollback_and_nothing_else(
    settings: Settings, applied: Target
) -> None:
    url = applied.url
    before = relations(url)

    outcome = rollback(settings, applied, ME, "ledger-kinds")

    assert outcome.done == ["002-ledger::ledger-kinds::tomas"]
    assert relations(url) == before - {"ledger_kinds", "ledger_kinds_pkey"}
    assert ("002.02", "002-ledger::ledger-kinds::tomas") not in history(url)
    assert len(history(url)) == 6
    audit = "SELECT action, outcome FROM backout_audit_event ORDER BY id DESC LIMIT 1"
    assert rows(url, audit) == [("rollback", "success")]


def test_a_multi_line_rollback_runs_its_statements_in_order(
    settings: Settings, applied: Target
) -> None:
    url = applied.url

    # the later changesets' column and index go with the table: accepted
    rollback(settings, applied, ME, "tomas:create-ledger", accept_damage=True)

    assert not {"ledger_entries", "ledger_entries_account", "ledger_entries_amount"} & relations(
        url
    )
    assert "accounts" in relations(url)


def test_run_in_transaction_false_rolls_back_outside_a_transaction(
    settings: Settings, applied: Target
) -> None:
    rollback(settings, applied, ME, "003.01")

    assert "ledger_entries_amount" not in relations(applied.url)
    assert "ledger_entries" in relations(applied.url)


def test_a_rollback_naming_an_earlier_changeset_runs_its_sql(
    settings: Settings, applied: Target
) -> None:
    url = applied.url

    rollback(settings, applied, ME, "ben:8")

    assert "cheap_products" in relations(url)
    assert one(url, "SELECT count(*) FROM cheap_products") == 0
    assert "0.1.08" not in dict(history(url, CATALOG_HISTORY))


def test_a_block_rollback_runs_and_the_changelogs_other_changesets_stay(
    settings: Settings, applied: Target
) -> None:
    url = applied.url

    rollback(settings, applied, ME, "ana:2")

    assert "product_prices" not in relations(url)
    assert "products" in relations(url)
    assert [v for v, _ in history(url, CATALOG_HISTORY)] == [
        "0.1.01", "0.1.03", "0.1.04", "0.1.07", "0.1.08", "0.1.09",
    ]  # fmt: skip


def test_emergency_by_author_and_id_on_the_command_line(cli: Path, database_url: str) -> None:
    assert run("apply", "--yes").exit_code == 0

    result = run(
        "emergency", "tomas:ledger-kinds", "--reason", "kinds were wrong", "--yes",
        "--no-rehearsal", "--no-git",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert "ledger_kinds" not in relations(database_url)
    assert "accounts" in relations(database_url)
    assert ("002.02", "002-ledger::ledger-kinds::tomas") not in history(database_url)
    audit = "SELECT action, outcome FROM backout_audit_event ORDER BY id DESC LIMIT 1"
    assert rows(database_url, audit) == [("emergency", "success")]
    (postmortem,) = (cli / "ops/postmortems").glob("INC-*.md")
    front = read_front_matter(postmortem.read_text())
    assert front["migration"] == "002-ledger::ledger-kinds::tomas"
    assert "ran line 18: DROP TABLE ledger_kinds" in postmortem.read_text()
    manifest = next((cli / ".backout/backups").glob("INC-*/manifest.json")).read_text()
    assert '"rows": 2' in manifest
    # the fix-forward stub is the folder's next number; lint and apply refuse it until written
    assert front["fix_forward"] == "db/004_fix_ledger-kinds.sql"
    assert run("apply", "--yes").exit_code != 0
    lint = run("lint", "db/004_fix_ledger-kinds.sql").stdout
    assert "unfinished-stub" in lint


def test_emergency_refuses_a_changeset_whose_rollback_is_not_required(
    cli: Path, database_url: str
) -> None:
    assert run("apply", "--yes").exit_code == 0

    result = run(
        "emergency", "seed-reference-account", "--reason", "r", "--yes", "--no-rehearsal",
        "--no-git",
    )  # fmt: skip

    assert result.exit_code == ExitCode.USAGE
    assert "002-ledger::seed-reference-account::tomas documents no rollback SQL" in result.stderr
    assert "--rollback-file" in result.stderr
    assert one(database_url, "SELECT count(*) FROM accounts") == 1
    assert len(history(database_url)) == 7
    assert not (cli / "ops").exists()


def test_rollback_and_show_on_the_command_line_name_the_same_changeset(
    cli: Path, database_url: str
) -> None:
    assert run("apply", "--yes").exit_code == 0

    printed = run("rollback", "maria:accounts-owner-index", "--print-sql")
    done = run("rollback", "accounts-owner-index", "--yes")

    assert printed.stdout == "DROP INDEX accounts_owner;\n"
    assert done.exit_code == 0, done.stderr
    assert "accounts_owner" not in relations(database_url)
    status = run("status").stdout
    assert "001-create-accounts::accounts-owner-index::maria  rolled_back" in status


# What the reader refuses never runs


@pytest.mark.parametrize(
    ("file", "where"),
    [
        ("001-parameters.sql", "001-parameters.sql:5"),
        ("002-malformed.sql", "002-malformed.sql:2"),
        ("003-bodies.sql", "003-bodies.sql:6"),
        ("004-goose-leftover.sql", "004-goose-leftover.sql:4"),
        ("005-unclosed-block.sql", "005-unclosed-block.sql:5"),
        ("cleanup.sql", "cleanup.sql:1"),
    ],
)
def test_apply_refuses_a_refused_file_and_runs_nothing(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, file: str, where: str
) -> None:
    (tmp_path / "db").mkdir()
    shutil.copy(FIXTURES / "numbered/001-create-accounts.sql", tmp_path / "db/000-accounts.sql")
    shutil.copy(FIXTURES / "refused" / file, tmp_path / "db")
    (tmp_path / "backout.toml").write_text('migrations = ["db"]\nformat = "liquibase"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    before = relations(database_url)

    result = run("apply", "--yes")

    assert result.exit_code == ExitCode.USAGE, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("backout: error: ")
    assert where in line
    assert "Traceback" not in result.stderr
    assert relations(database_url) == before  # not even 000-accounts ran


def test_a_goose_file_read_as_liquibase_never_creates_and_drops_its_table(
    tmp_path: Path, database_url: str
) -> None:
    (tmp_path / "db").mkdir()
    shutil.copy(FIXTURES / "refused/004-goose-leftover.sql", tmp_path / "db")
    (tmp_path / "backout.toml").write_text('migrations = ["db"]\n')
    settings = load_settings(tmp_path, environ={})

    with pytest.raises(Exception, match=r"004-goose-leftover.sql:4: format-mismatch"):
        apply(settings, Target(database_url), ME)

    assert "schema_migrations" not in relations(database_url)
    assert "leftovers" not in relations(database_url)


def test_rollback_refuses_a_rollback_liquibase_would_ignore(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db/001-coupons.sql").write_text(
        "--liquibase formatted sql\n--changeset kim:coupons\n"
        "CREATE TABLE coupons (code text PRIMARY KEY);\n--rollback: DROP TABLE coupons;\n"
    )
    (tmp_path / "backout.toml").write_text('migrations = ["db"]\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    assert run("apply", "--yes").exit_code == ExitCode.USAGE  # apply refuses it too
    assert run("baseline", "--yes").exit_code == 0  # say it was applied by hand
    rows_before = history(database_url)

    for args in (
        ("rollback", "coupons", "--yes"),
        ("emergency", "kim:coupons", "--reason", "r", "--yes", "--no-rehearsal", "--no-git"),
    ):
        result = run(*args)
        assert result.exit_code == ExitCode.USAGE, result.stderr
        assert "001-coupons.sql:4: rollback-unparseable" in result.stderr
    assert history(database_url) == rows_before


# The variants: case, spacing, delimiters, ignored lines, CRLF, a wrapper


def test_the_variants_apply_and_roll_back_exactly(tmp_path: Path, database_url: str) -> None:
    shutil.copytree(FIXTURES / "variants", tmp_path / "db")
    (tmp_path / "backout.toml").write_text('migrations = ["db"]\n')
    settings = load_settings(tmp_path, environ={})
    target = Target(database_url)

    apply(settings, target, ME)

    url = database_url
    assert {"shipments", "carriers", "returns", "shipments_carrier"} <= relations(url)
    assert one(url, "SELECT string_agg(code, ',' ORDER BY code) FROM carriers") == "dhl,ups"
    approved = (
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'returns' AND column_name = 'approved'"
    )
    assert one(url, approved) == 1
    # the ignored `SET search_path TO shipping` never ran: carriers is in public (above)

    rollback(settings, target, ME, "rui:ship-2")  # DELETE, GO, DROP TABLE, GO
    rollback(settings, target, ME, "returns-2")  # BEGIN ... COMMIT around it: not sent

    assert "carriers" not in relations(url)
    assert one(url, approved) == 0
    assert [v for v, _ in history(url)] == [
        "2024-02-01.01", "20240115093000.01", "20240115093000.03",
    ]  # fmt: skip


# Versions: appended changesets are new; one inserted before applied ones is refused, not re-run


def test_appended_changesets_are_pending_and_inserted_ones_are_refused(
    settings: Settings, applied: Target
) -> None:
    url = applied.url
    ledger = settings.root / "db/002-ledger.sql"
    text = ledger.read_text()
    ledger.write_text(
        text + "\n--changeset tomas:ledger-tags\nCREATE TABLE ledger_tags (tag text);\n"
        "--rollback DROP TABLE ledger_tags;\n"
    )

    apply(settings, applied, ME)

    assert "ledger_tags" in relations(url)
    assert ("002.05", "002-ledger::ledger-tags::tomas") in history(url)

    # a changeset inserted before applied ones shifts their versions: status calls them
    # modified and apply refuses before running anything
    ledger.write_text(
        text.replace(
            "--changeset tomas:ledger-kinds",
            "--changeset tomas:early\nCREATE TABLE early (id int);\n\n"
            "--changeset tomas:ledger-kinds",
        )
    )
    with pytest.raises(RefusedError, match="applied migrations were modified since"):
        apply(settings, applied, ME)
    assert "early" not in relations(url)
    assert one(url, "SELECT count(*) FROM ledger_kinds") == 2
