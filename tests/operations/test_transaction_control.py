"""Transaction control in a migration section, against a real PostgreSQL server.

A section wholly wrapped in one ``BEGIN; ... COMMIT;`` runs as ONE transaction of backout's own
(the wrapper is not sent); any other transaction control is refused before anything runs, by
every command that executes SQL. Each test checks the database itself before and after: the
column and its rows, the history row, the audit table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.database.runner import BookkeepingFailedError, StatementFailedError
from backout.errors import ExitCode, MalformedMigrationError, UsageError
from backout.migrations.catalog import project_catalog
from backout.operations import emergency as procedure
from backout.operations.apply import apply
from backout.operations.rollback import rollback
from backout.operations.verify import verify
from tests.runner import run
from tests.sample_project import ME, write

WRAPPED = (
    "BEGIN;\nALTER TABLE t DROP COLUMN d;\nCOMMIT;\nWARNING: this deletes t.d; back up t first."
)
"""Failure 1: a rollback section wrapped in BEGIN ... COMMIT (the wrapper at lines 13 and 15)."""
COLUMN_D = (
    "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'd'"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n')
    write(
        tmp_path,
        "001_create_t.sql",
        "CREATE TABLE t (id int PRIMARY KEY);\nINSERT INTO t VALUES (1), (2);",
        "DROP TABLE t;\nWARNING: this deletes every row of t; back up t first.",
    )
    return tmp_path


def add_d(project: Path, rollback_section: str, forward: str | None = None) -> None:
    """002_add_d: adds t.d and fills it; its ROLLBACK section is ``rollback_section``."""
    body = forward or "ALTER TABLE t ADD COLUMN d text;\nUPDATE t SET d = 'kept ' || id;"
    write(project, "002_add_d.sql", body, rollback_section)


def applied_then_edited(project: Path, settings: Settings, url: str, section: str) -> Target:
    """002_add_d applied with a plain rollback, then its ROLLBACK section edited to ``section``
    (apply refuses a rollback section with transaction control)."""
    add_d(project, "ALTER TABLE t DROP COLUMN d;\nWARNING: deletes t.d, back up.")
    target = Target(url)
    apply(settings, target, ME)
    add_d(project, section + "\nWARNING: deletes t.d, back up.")
    return target


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project, environ={})


def one(url: str, query: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def snapshot(url: str) -> dict[str, Any]:
    """What must not change: the column, its rows, the history, the rollbacks audited."""
    return {
        "column": one(url, COLUMN_D),
        "rows": one(url, "SELECT string_agg(coalesce(d, '-'), ',' ORDER BY id) FROM t"),
        "history": one(
            url, "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations"
        ),
        "rolled back": one(
            url,
            "SELECT count(*) FROM backout_audit_event "
            "WHERE action IN ('rollback', 'emergency') AND outcome = 'success'",
        ),
    }


APPLIED = {"column": 1, "rows": "kept 1,kept 2", "history": "001,002", "rolled back": 0}


def emergency(settings: Settings, target: Target, **kw: Any) -> procedure.Result:
    request = procedure.Request(reference="002", reason="r", rehearse=False, **kw)
    return procedure.emergency(settings, target, ME, request)


# Failure 1: a dry run of a rollback wrapped in BEGIN ... COMMIT dropped the column for real.


def test_rollback_dry_run_of_a_wrapped_section_keeps_the_column_its_rows_and_history(
    project: Path, settings: Settings, database_url: str
) -> None:
    add_d(project, WRAPPED)
    target = Target(database_url)
    apply(settings, target, ME)
    assert snapshot(database_url) == APPLIED

    outcome = rollback(settings, target, ME, "002", dry_run=True)

    assert snapshot(database_url) == APPLIED
    assert outcome.done == ["ok      line 14: ALTER TABLE t DROP COLUMN d"]


def test_emergency_dry_run_of_a_wrapped_section_keeps_the_column_its_rows_and_history(
    project: Path, settings: Settings, database_url: str
) -> None:
    add_d(project, WRAPPED)
    target = Target(database_url)
    apply(settings, target, ME)

    result = emergency(settings, target, dry_run=True)

    assert snapshot(database_url) == APPLIED
    assert list(result.dry_run_lines) == ["ok      line 14: ALTER TABLE t DROP COLUMN d"]
    assert not (project / "ops").exists()


@pytest.fixture
def cli(project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(project)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS"):
        monkeypatch.delenv(name, raising=False)
    return project


@pytest.mark.parametrize(
    "args",
    [("rollback", "002", "--dry-run"), ("emergency", "002", "--reason", "r", "--dry-run")],
    ids=["rollback", "emergency"],
)
def test_the_dry_runs_on_the_command_line_keep_everything(
    cli: Path, database_url: str, args: tuple[str, ...]
) -> None:
    add_d(cli, WRAPPED)
    assert run("apply", "--yes").exit_code == 0

    result = run(*args, "--no-rehearsal") if args[0] == "emergency" else run(*args)

    assert snapshot(database_url) == APPLIED
    assert result.exit_code == 0, result.stderr
    assert "line 14: ALTER TABLE t DROP COLUMN d" in result.stdout
    assert run("status", "--json").stdout.count('"applied"') == 2


# A wrapped section runs as one transaction: a failure anywhere rolls back all of it.


def test_a_wrapped_rollback_runs_and_removes_its_history_row_in_one_transaction(
    project: Path, settings: Settings, database_url: str
) -> None:
    add_d(project, WRAPPED)
    target = Target(database_url)
    apply(settings, target, ME)

    rollback(settings, target, ME, "002")

    assert one(database_url, COLUMN_D) == 0
    assert one(database_url, "SELECT count(*) FROM schema_migrations WHERE version = '002'") == 0
    audited = "SELECT action, outcome FROM backout_audit_event ORDER BY id DESC LIMIT 1"
    with psycopg.connect(database_url) as conn:
        assert conn.execute(audited).fetchall() == [("rollback", "success")]


def refuse_history_changes(url: str) -> None:
    """A trigger that makes the history change (the step's last write) fail."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION no_history() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'history is frozen'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER frozen BEFORE INSERT OR DELETE ON schema_migrations "
            "FOR EACH ROW EXECUTE FUNCTION no_history()"
        )


def test_a_failure_after_a_wrapped_rollback_section_rolls_all_of_it_back(
    project: Path, settings: Settings, database_url: str
) -> None:
    add_d(project, WRAPPED)
    target = Target(database_url)
    apply(settings, target, ME)
    refuse_history_changes(database_url)

    with pytest.raises(BookkeepingFailedError, match="history is frozen"):
        rollback(settings, target, ME, "002")

    assert snapshot(database_url) == APPLIED


def test_a_failure_after_a_wrapped_forward_section_rolls_all_of_it_back(
    project: Path, settings: Settings, database_url: str
) -> None:
    target = Target(database_url)
    apply(settings, target, ME)
    add_d(
        project,
        "ALTER TABLE t DROP COLUMN d;\nWARNING: deletes t.d; back up t first.",
        forward="START TRANSACTION;\nALTER TABLE t ADD COLUMN d text;\nEND;",
    )
    refuse_history_changes(database_url)

    with pytest.raises(BookkeepingFailedError, match="history is frozen"):
        apply(settings, target, ME)

    assert one(database_url, COLUMN_D) == 0
    assert one(database_url, "SELECT string_agg(version, ',') FROM schema_migrations") == "001"


def test_a_failing_statement_inside_a_wrapper_rolls_back_the_statements_before_it(
    project: Path, settings: Settings, database_url: str
) -> None:
    add_d(
        project,
        "begin work;\nALTER TABLE t DROP COLUMN d;\nSELECT 1 / 0;\ncommit work;\n"
        "WARNING: deletes t.d, back up.",
    )
    target = Target(database_url)
    apply(settings, target, ME)

    with pytest.raises(StatementFailedError, match="division by zero"):
        rollback(settings, target, ME, "002")

    assert snapshot(database_url) == APPLIED


# Any other transaction control is refused before anything runs, by every command.

REFUSED = [
    "COMMIT;",
    "END;",
    "ROLLBACK;",
    "ABORT;",
    "SAVEPOINT s;",
    "RELEASE SAVEPOINT s;",
    "ROLLBACK TO SAVEPOINT s;",
    "COMMIT AND CHAIN;",
    "PREPARE TRANSACTION 'x';",
    "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;",
    "BEGIN;",
]


@pytest.mark.parametrize("control", REFUSED)
def test_transaction_control_inside_a_rollback_is_refused_by_the_dry_runs(
    project: Path, settings: Settings, database_url: str, control: str
) -> None:
    section = f"ALTER TABLE t DROP COLUMN d;\n{control}\nSELECT 1;"
    target = applied_then_edited(project, settings, database_url, section)

    with pytest.raises(MalformedMigrationError, match=r"002_add_d.sql:14: transaction-control"):
        rollback(settings, target, ME, "002", dry_run=True)
    with pytest.raises(MalformedMigrationError, match=r"002_add_d.sql:14: transaction-control"):
        emergency(settings, target, dry_run=True)

    assert snapshot(database_url) == APPLIED


NOT_A_WRAPPER = {
    "commit in the middle": "BEGIN;\nALTER TABLE t DROP COLUMN d;\nCOMMIT;\nSELECT 1;",
    "two wrappers": "BEGIN;\nALTER TABLE t DROP COLUMN d;\nCOMMIT;\nBEGIN;\nSELECT 1;\nCOMMIT;",
    "ends with rollback": "BEGIN;\nALTER TABLE t DROP COLUMN d;\nROLLBACK;",
    "commit and chain": "BEGIN;\nALTER TABLE t DROP COLUMN d;\nCOMMIT AND CHAIN;",
    "with options": "BEGIN ISOLATION LEVEL SERIALIZABLE;\nALTER TABLE t DROP COLUMN d;\nCOMMIT;",
    "savepoint inside": "BEGIN;\nSAVEPOINT s;\nALTER TABLE t DROP COLUMN d;\nCOMMIT;",
    "no begin": "ALTER TABLE t DROP COLUMN d;\nCOMMIT;",
}


@pytest.mark.parametrize("section", NOT_A_WRAPPER.values(), ids=NOT_A_WRAPPER.keys())
@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real"])
def test_a_section_that_is_not_wholly_wrapped_is_refused_by_rollback_and_emergency(
    project: Path, settings: Settings, database_url: str, section: str, dry_run: bool
) -> None:
    target = applied_then_edited(project, settings, database_url, section)

    with pytest.raises(MalformedMigrationError, match=r"002_add_d.sql:1\d: transaction-control"):
        rollback(settings, target, ME, "002", dry_run=dry_run)
    with pytest.raises(MalformedMigrationError, match=r"002_add_d.sql:1\d: transaction-control"):
        emergency(settings, target, dry_run=dry_run)

    assert snapshot(database_url) == APPLIED
    assert not (project / "ops").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("rollback", "002", "--dry-run"),
        ("rollback", "002", "--yes"),
        ("emergency", "002", "--reason", "r", "--dry-run", "--no-rehearsal"),
        ("emergency", "002", "--reason", "r", "--yes", "--no-rehearsal"),
    ],
    ids=["rollback-dry-run", "rollback", "emergency-dry-run", "emergency"],
)
def test_refusals_on_the_command_line_exit_2_naming_the_file_and_line(
    cli: Path, database_url: str, args: tuple[str, ...]
) -> None:
    add_d(cli, "ALTER TABLE t DROP COLUMN d;\nWARNING: deletes t.d, back up.")
    assert run("apply", "--yes").exit_code == 0
    add_d(cli, "ALTER TABLE t DROP COLUMN d;\nCOMMIT;\nWARNING: deletes t.d, back up.")

    result = run(*args)

    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("backout: error: ")
    assert "migrations/002_add_d.sql:14: transaction-control: COMMIT" in result.stderr
    assert result.stderr.count("\n") == 1
    assert snapshot(database_url) == APPLIED
    assert not (cli / "ops").exists()


def test_apply_refuses_transaction_control_in_the_forward_section_before_anything_runs(
    project: Path, settings: Settings, database_url: str
) -> None:
    add_d(
        project,
        "ALTER TABLE t DROP COLUMN d;\nWARNING: deletes t.d, back up.",
        forward="ALTER TABLE t ADD COLUMN d text;\nCOMMIT;\nALTER TABLE t ADD COLUMN e text;",
    )
    target = Target(database_url)

    with pytest.raises(MalformedMigrationError, match=r"002_add_d.sql:7: transaction-control"):
        apply(settings, target, ME)

    assert one(database_url, "SELECT to_regclass('t') IS NULL")
    assert one(database_url, "SELECT to_regclass('schema_migrations') IS NULL")


def test_a_rollback_file_with_transaction_control_is_refused(
    project: Path, settings: Settings, database_url: str
) -> None:
    add_d(project, WRAPPED)
    target = Target(database_url)
    apply(settings, target, ME)
    undo = project / "undo.sql"
    undo.write_text("ALTER TABLE t DROP COLUMN d;\nCOMMIT;\n")

    for dry_run in (True, False):
        with pytest.raises(UsageError, match=r"undo.sql:2: transaction-control"):
            rollback(settings, target, ME, "002", rollback_file=undo, dry_run=dry_run)
        with pytest.raises(UsageError, match=r"undo.sql:2: transaction-control"):
            emergency(settings, target, dry_run=dry_run, rollback_file=undo)

    assert snapshot(database_url) == APPLIED


def test_a_wrapped_rollback_file_runs_as_one_transaction(
    project: Path, settings: Settings, database_url: str
) -> None:
    add_d(project, WRAPPED)
    target = Target(database_url)
    apply(settings, target, ME)
    undo = project / "undo.sql"
    undo.write_text("BEGIN;\nALTER TABLE t DROP COLUMN d;\nCOMMIT;\n")

    outcome = rollback(settings, target, ME, "002", rollback_file=undo, dry_run=True)
    assert outcome.done == ["ok      line 2: ALTER TABLE t DROP COLUMN d"]
    assert snapshot(database_url) == APPLIED

    rollback(settings, target, ME, "002", rollback_file=undo)
    assert one(database_url, COLUMN_D) == 0


# verify and the rehearsal run on a scratch database: they refuse the same sections.


def test_verify_runs_a_wrapped_migration_and_refuses_other_transaction_control(
    project: Path, settings: Settings, database_url: str
) -> None:
    add_d(project, WRAPPED, forward="BEGIN;\nALTER TABLE t ADD COLUMN d text;\nCOMMIT;")
    with psycopg.connect(database_url, autocommit=True) as conn:
        report = verify(settings, conn, project_catalog(settings).entries)
    assert [v.outcome for v in report.verdicts] == ["ok", "ok"]

    add_d(project, "ALTER TABLE t DROP COLUMN d;\nCOMMIT;\nWARNING: deletes t.d, back up.")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE t")
        report = verify(settings, conn, project_catalog(settings).entries)
    assert [v.outcome for v in report.verdicts] == ["ok", "failed"]
    assert "002_add_d.sql:14: transaction-control" in (report.verdicts[1].error or "")
    # refused before it ran: t has no column d (the forward section never ran)
    assert one(database_url, COLUMN_D) == 0
