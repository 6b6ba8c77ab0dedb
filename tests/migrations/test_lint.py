"""Lint rules: each finding names its rule, severity, file, line and the fix."""

from __future__ import annotations

from pathlib import Path

from backout.migrations.file import MigrationFile, parse_migration
from backout.migrations.lint import RULES, Severity, lint

HEADER = "-- Migration: {name}\n-- Purpose: p\n-- Phase: 1\n-- Checklist: c\n\n"


def migration(
    name: str = "001_create_jobs.sql",
    body: str = "CREATE TABLE jobs (id int);\n",
    rollback: str = "-- ROLLBACK\n--   DROP TABLE jobs;\n-- WARNING: deletes all jobs.\n",
    folder: str = "/m",
    header: str | None = None,
) -> MigrationFile:
    text = (HEADER.format(name=name) if header is None else header) + body + "\n" + rollback
    return parse_migration(Path(folder) / name, text.encode(), folder=Path(folder))


def rules(*migrations: MigrationFile) -> list[tuple[str, int]]:
    return [(f.rule, f.line) for f in lint(migrations)]


def test_a_seed_style_migration_has_no_findings() -> None:
    assert rules(migration()) == []


def test_every_rule_is_documented_with_a_severity() -> None:
    assert all(rule.summary and isinstance(rule.severity, Severity) for rule in RULES.values())


def test_name_format_wants_three_digits_and_snake_case() -> None:
    assert rules(migration("1-CreateJobs.sql", header=HEADER.format(name="1-CreateJobs.sql"))) == [
        ("name-format", 1)
    ]


def test_missing_header_fields_are_errors_one_per_field() -> None:
    findings = lint([migration(header="-- Migration: 001_create_jobs.sql\n\n")])

    assert [(f.rule, f.severity, f.message) for f in findings] == [
        (
            "header-missing",
            Severity.ERROR,
            f"the header has no `-- {key}:` line; add it to the comment block at the top",
        )
        for key in ("Purpose", "Phase", "Checklist")
    ]


def test_a_header_naming_another_file_is_a_warning_on_its_line() -> None:
    assert rules(migration(header=HEADER.format(name="009_other.sql"))) == [("header-mismatch", 1)]


def test_duplicate_versions_in_a_folder_are_errors() -> None:
    first = migration("001_create_jobs.sql")
    second = migration("001_create_users.sql")

    assert rules(first, second) == [("duplicate-version", 1)]


def test_the_same_version_in_two_folders_is_only_a_warning() -> None:
    jobs = migration("001_create_jobs.sql", folder="/a")
    keys = migration("001_create_keys.sql", folder="/b")

    assert [(f.rule, f.severity) for f in lint([jobs, keys])] == [
        ("duplicate-version-across-folders", Severity.WARNING)
    ]


def test_a_gap_in_the_sequence_is_a_warning_naming_the_missing_versions() -> None:
    findings = lint([migration("001_a.sql"), migration("004_d.sql")])

    assert [(f.rule, f.file.name) for f in findings] == [("version-gap", "004_d.sql")]
    assert findings[0].message.startswith("versions 002..003 are missing before 004_d.sql")


def test_no_rollback_section_is_an_error() -> None:
    assert rules(migration(rollback="")) == [("rollback-missing", 1)]


def test_an_empty_rollback_section_is_an_error_on_its_heading() -> None:
    assert rules(migration(rollback="-- ROLLBACK\n-- To rollback this migration:\n")) == [
        ("rollback-missing", 8)
    ]


def test_a_rollback_documented_as_irreversible_is_not_missing() -> None:
    text = "-- ROLLBACK\n-- Irreversible: PostgreSQL cannot drop an enum value.\n"

    assert rules(migration(rollback=text)) == []


def test_a_destructive_rollback_needs_a_warning_or_backup_note() -> None:
    findings = lint([migration(rollback="-- ROLLBACK\n--   DROP TABLE jobs CASCADE;\n")])

    assert [(f.rule, f.line) for f in findings] == [("rollback-data-loss", 9)]
    assert "DROP TABLE jobs CASCADE" in findings[0].message


def test_a_destructive_forward_change_needs_a_data_preservation_note() -> None:
    body = "UPDATE jobs SET state = 'done' WHERE state IS NULL;\n"
    noted = "-- Data preservation: only NULL states change; the rollback sets them back.\n" + body

    assert rules(migration(body=body)) == [("forward-data-loss", 6)]
    assert rules(migration(body=noted)) == []


def test_parse_problems_become_findings_with_their_lines() -> None:
    body = "\\i setup.sql\nCREATE TABEL jobs (id int);\n"
    rollback = "-- ROLLBACK\n--   DROP TABEL jobs;\n--   DROP INDEX i\n"

    assert rules(migration(body=body, rollback=rollback)) == [
        ("psql-meta-command", 6),
        ("sql-syntax", 7),
        ("rollback-unparseable", 10),
        ("rollback-unterminated", 11),
    ]


def test_non_transactional_statements_are_warnings_and_a_wrapper_around_one_is_an_error() -> None:
    # Issue 10 changed this: transaction control was a warning; it is refused now, and a
    # BEGIN ... COMMIT around a statement that cannot run in a transaction is refused too.
    body = "BEGIN;\nCREATE INDEX CONCURRENTLY i ON jobs (id);\nCOMMIT;\n"
    rollback = "-- ROLLBACK\n--   DROP INDEX CONCURRENTLY i;\n"

    findings = lint([migration(body=body, rollback=rollback)])

    assert [(f.rule, f.severity, f.line) for f in findings] == [
        ("non-transactional", Severity.WARNING, 7),
        ("transaction-control", Severity.ERROR, 7),
        ("non-transactional", Severity.WARNING, 11),
    ]


def test_a_file_with_no_sql_is_an_error() -> None:
    assert rules(migration(body="-- nothing yet\n")) == [("forward-empty", 1)]


def test_findings_in_a_sibling_rollback_file_name_that_file() -> None:
    text = HEADER.format(name="001_x.sql") + "CREATE TABLE x (id int);\n"
    m = parse_migration(
        Path("/m/001_x.sql"),
        text.encode(),
        siblings={"001_x.rollback.sql": "DROP TABEL x;\n"},
    )

    assert [(f.rule, f.file.name, f.line) for f in lint([m])] == [
        ("sql-syntax", "001_x.rollback.sql", 1)
    ]


def test_filling_a_column_the_same_migration_adds_is_not_data_loss() -> None:
    body = "ALTER TABLE jobs ADD COLUMN state text;\nUPDATE jobs SET state = 'new';\n"
    overwrite = "ALTER TABLE jobs ADD COLUMN state text;\nUPDATE jobs SET id = 0;\n"

    assert rules(migration(body=body)) == []
    assert rules(migration(body=overwrite)) == [("forward-data-loss", 7)]


def test_an_unfinished_fix_forward_stub_is_an_error() -> None:
    body = "-- BACKOUT-STUB: write the corrected change here.\nSELECT 1;\n"

    assert rules(migration(body=body)) == [("unfinished-stub", 1)]
