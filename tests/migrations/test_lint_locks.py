"""Lock-safety lint: each rule has a fixture that triggers it, forward and rollback, and one
that does not; ``-- backout:ignore`` switches a rule off where it says; ``lock_timeout`` is
asked of the files only where backout does not set it."""

from __future__ import annotations

from pathlib import Path

import pytest

from backout.config import load_settings
from backout.migrations.file import MigrationFile, parse_migration
from backout.migrations.formats import get_format
from backout.migrations.lint import LintOptions, Severity, lint, lint_project
from backout.migrations.lock_safety import RULE_IDS

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lint"
FOLDER = Path("/m")
STRICT = LintOptions(lock_timeout_required_in=frozenset({FOLDER}))
"""The folder's SQL must set its own lock_timeout (it is run by another tool)."""


def fixture(rule: str, which: str) -> MigrationFile:
    data = (FIXTURES / rule / f"{which}.sql").read_bytes()
    return parse_migration(FOLDER / "001_fixture.sql", data, folder=FOLDER)


def options(rule: str) -> LintOptions:
    """``lock-timeout`` warns only where the SQL must set it; the other rules everywhere."""
    return STRICT if rule == "lock-timeout" else LintOptions()


def found(m: MigrationFile, options: LintOptions = STRICT) -> list[tuple[str, int, str]]:
    """(rule, line, section) of each finding; every lock-safety finding is a warning."""
    findings = lint([m], options)
    assert all(f.severity is Severity.WARNING for f in findings if f.rule in RULE_IDS)
    return [
        (f.rule, f.line, "rollback" if f.message.startswith("(rollback) ") else "forward")
        for f in findings
    ]


def test_every_rule_has_a_fixture_folder() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(RULE_IDS)


@pytest.mark.parametrize("rule", RULE_IDS)
def test_the_triggering_fixture_warns_in_the_forward_and_the_rollback_section(rule: str) -> None:
    findings = found(fixture(rule, "triggers"), options(rule))

    assert {section for found_rule, _, section in findings if found_rule == rule} == {
        "forward",
        "rollback",
    }


@pytest.mark.parametrize("rule", RULE_IDS)
def test_the_clean_fixture_has_no_lock_safety_finding_and_no_error(rule: str) -> None:
    findings = lint([fixture(rule, "clean")], options(rule))

    assert [(f.rule, f.line) for f in findings if f.rule in RULE_IDS] == []
    assert [f.rule for f in findings if f.severity is Severity.ERROR] == []


def test_each_rule_finds_what_its_fixture_holds_on_the_statements_lines() -> None:
    assert found(fixture("scan-under-lock", "triggers"), LintOptions()) == [
        ("scan-under-lock", 6, "forward"),  # SET NOT NULL
        ("scan-under-lock", 7, "forward"),  # CHECK
        ("scan-under-lock", 10, "rollback"),  # FOREIGN KEY
    ]
    assert found(fixture("lock-timeout", "triggers")) == [
        ("lock-timeout", 6, "forward"),
        ("lock-timeout", 9, "rollback"),
    ]


def test_the_message_says_what_to_do_instead() -> None:
    (finding,) = lint([fixture("volatile-default", "triggers")])[:1]

    assert finding.message == (
        "ADD COLUMN with a default that calls gen_random_uuid(), a volatile function rewrites "
        "accounts under ACCESS EXCLUSIVE, computing a value for every row; add the column "
        "without it, then fill existing rows in batches"
    )


def test_backout_runs_sql_with_its_lock_timeout_so_by_default_the_file_need_not_set_one() -> None:
    assert found(fixture("lock-timeout", "triggers"), LintOptions()) == []


HEADER = "-- Migration: 001_fixture.sql\n-- Purpose: p\n-- Phase: 1\n-- Checklist: c\n\n"


def migration(body: str, rollback: str = "") -> MigrationFile:
    text = HEADER + body + "\n-- ROLLBACK\n" + (rollback or "-- Irreversible: a fixture.\n")
    return parse_migration(FOLDER / "001_fixture.sql", text.encode(), folder=FOLDER)


def test_an_ignore_comment_switches_off_its_rules_for_the_next_statement_only() -> None:
    body = (
        "-- backout:ignore index-not-concurrent, rename\n"
        "CREATE INDEX a ON accounts (owner);\n"
        "CREATE INDEX b ON accounts (owner);\n"
    )
    rollback = "-- backout:ignore index-not-concurrent\n--   DROP INDEX a;\n--   DROP INDEX b;\n"

    assert found(migration(body, rollback), LintOptions()) == [
        ("index-not-concurrent", 8, "forward"),
        ("index-not-concurrent", 13, "rollback"),
    ]


def test_an_ignore_file_comment_switches_off_its_rule_everywhere_in_the_file() -> None:
    body = "-- backout:ignore-file rename\nALTER TABLE a RENAME TO b;\nALTER TABLE c RENAME TO d;\n"

    assert found(migration(body, "--   ALTER TABLE b RENAME TO a;\n"), LintOptions()) == []


def test_an_ignore_comment_in_the_header_block_is_not_a_header_field() -> None:
    text = HEADER.rstrip("\n") + "\n-- backout:ignore-file rename\nALTER TABLE a RENAME TO b;\n"
    m = parse_migration(FOLDER / "001_fixture.sql", text.encode(), folder=FOLDER)

    assert list(m.header) == ["Migration", "Purpose", "Phase", "Checklist"]
    assert found(m, LintOptions()) == [("rollback-missing", 1, "forward")]


def test_a_rollback_file_beside_the_migration_holds_its_own_ignore_comments() -> None:
    text = HEADER + "ALTER TABLE a RENAME TO b;\n"
    m = parse_migration(
        FOLDER / "001_fixture.sql",
        text.encode(),
        folder=FOLDER,
        siblings={
            "001_fixture.rollback.sql": "-- backout:ignore rename\nALTER TABLE b RENAME TO a;\n"
        },
    )

    assert [(f.rule, f.file.name, f.line) for f in lint([m])] == [("rename", "001_fixture.sql", 6)]


def test_a_table_created_earlier_in_the_section_is_new_one_created_by_the_forward_is_not() -> None:
    body = "CREATE TABLE n (id int);\nALTER TABLE n RENAME COLUMN id TO key;\n"
    rollback = "--   ALTER TABLE n RENAME COLUMN key TO id;\n"

    assert found(migration(body, rollback), LintOptions()) == [("rename", 10, "rollback")]


def test_lock_timeout_set_to_zero_or_reset_is_no_timeout() -> None:
    body = "SET lock_timeout = 0;\nALTER TABLE a ADD COLUMN b int;\n"
    reset = "SET lock_timeout = '1s';\nRESET lock_timeout;\nALTER TABLE a ADD COLUMN b int;\n"

    assert found(migration(body)) == [("lock-timeout", 7, "forward")]
    assert found(migration(reset)) == [("lock-timeout", 8, "forward")]


def test_an_enum_value_alone_in_its_transaction_is_fine() -> None:
    shared = "ALTER TYPE mood ADD VALUE 'x';\nSELECT 1;\n"
    m = migration(shared)

    assert found(m, LintOptions()) == [("enum-value-in-transaction", 6, "forward")]
    assert found(migration("ALTER TYPE mood ADD VALUE 'x';\n"), LintOptions()) == []


def write_project(root: Path, config: str) -> None:
    (root / "backout.toml").write_text(config)
    (root / "migrations").mkdir()
    text = (FIXTURES / "lock-timeout" / "triggers.sql").read_text()
    (root / "migrations" / "001_fixture.sql").write_text(text)


@pytest.mark.parametrize(
    ("config", "warned"),
    [
        ('migrations = ["migrations"]\n', False),
        ('migrations = ["migrations"]\nlint_lock_timeout = "required"\n', True),
        ('migrations = ["migrations"]\nhistory = "goose"\n', True),
    ],
    ids=["backout-runs-it", "required", "another-tool-runs-it"],
)
def test_the_project_settings_say_whether_files_must_set_lock_timeout(
    tmp_path: Path, config: str, warned: bool
) -> None:
    write_project(tmp_path, config)

    report = lint_project(load_settings(tmp_path, environ={}))

    assert [f.rule for f in report.findings] == (["lock-timeout"] * 2 if warned else [])
    assert report.errors == 0


GOOSE = """\
-- +goose Up
-- +goose NO TRANSACTION
-- backout:ignore rename
ALTER TABLE accounts RENAME COLUMN owner TO holder;
ALTER TYPE account_state ADD VALUE 'frozen';
INSERT INTO account_states (state) VALUES ('frozen');

-- +goose Down
ALTER TABLE accounts RENAME COLUMN holder TO owner;
"""


def test_other_formats_are_checked_and_honour_ignore_comments_and_no_transaction(
    tmp_path: Path,
) -> None:
    (tmp_path / "00001_rename_owner.sql").write_text(GOOSE)
    goose = get_format("goose")
    (m,) = [goose.read(entry) for entry in goose.entries(tmp_path)]

    assert [(f.rule, f.line, f.message[:11]) for f in lint([m])] == [("rename", 9, "(rollback) ")]
