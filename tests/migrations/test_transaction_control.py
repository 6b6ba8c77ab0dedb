"""Transaction control in a section, without a database: the one wrapper, and the refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from backout.errors import MalformedMigrationError, UsageError
from backout.migrations.file import MigrationFile, parse_migration
from backout.migrations.lint import lint, refusals, require_runnable
from backout.migrations.statements import Flag, Statement, split
from backout.migrations.transaction_control import refuse_transaction_control, unwrap

HEADER = "-- Migration: 001_x.sql\n-- Purpose: p\n-- Phase: 1\n-- Checklist: c\n\n"
ROLLBACK = "\n-- ROLLBACK\n--   DROP TABLE jobs;\n-- WARNING: deletes all jobs. Back up jobs.\n"


def parse(text: str, siblings: dict[str, str] | None = None) -> MigrationFile:
    return parse_migration(Path("/m/001_x.sql"), text.encode(), siblings=siblings)


def errors(m: MigrationFile) -> list[tuple[str, int]]:
    return [(f.rule, f.line) for f in lint([m]) if f.severity == "error"]


WRAPPERS = [
    ("BEGIN;", "COMMIT;"),
    ("begin;", "commit;"),
    ("BEGIN WORK;", "COMMIT WORK;"),
    ("BEGIN TRANSACTION;", "COMMIT TRANSACTION;"),
    ("START TRANSACTION;", "END;"),
    ("Begin;", "End Transaction;"),
]


@pytest.mark.parametrize(("begin", "commit"), WRAPPERS)
def test_a_forward_section_wholly_wrapped_runs_without_its_wrapper(begin: str, commit: str) -> None:
    m = parse(
        f"{HEADER}{begin}\nCREATE TABLE jobs (id int);\nINSERT INTO jobs VALUES (1);\n"
        f"{commit}\n{ROLLBACK}"
    )

    assert [s.sql for s in m.statements] == [
        "CREATE TABLE jobs (id int)",
        "INSERT INTO jobs VALUES (1)",
    ]
    assert m.wrapper is not None
    assert m.wrapper.lines == (6, 9)
    assert m.wrapper.describe() == (
        f"{begin[:-1]} (line 6) and {commit[:-1]} (line 9) wrap the whole section: they are not "
        "sent; backout runs the section as one transaction of its own"
    )
    assert m.all_problems == ()
    assert errors(m) == []


@pytest.mark.parametrize(("begin", "commit"), WRAPPERS)
def test_a_rollback_section_wholly_wrapped_runs_without_its_wrapper(
    begin: str, commit: str
) -> None:
    rollback = (
        f"\n-- ROLLBACK\n--   {begin}\n--   DROP TABLE jobs;\n--   {commit}\n"
        "-- WARNING: deletes jobs.\n"
    )
    m = parse(f"{HEADER}CREATE TABLE jobs (id int);\n{rollback}")

    assert [s.sql for s in m.rollback.statements] == ["DROP TABLE jobs"]
    assert m.rollback.wrapper is not None
    assert m.rollback.wrapper.lines == (9, 11)
    assert m.all_problems == ()
    assert errors(m) == []


def test_a_wrapped_sibling_rollback_file_runs_without_its_wrapper() -> None:
    m = parse(
        "CREATE TABLE jobs (id int);\n",
        siblings={
            "001_x.rollback.sql": "-- WARNING: deletes jobs\nBEGIN;\nDROP TABLE jobs;\nCOMMIT;\n"
        },
    )

    assert [s.sql for s in m.rollback.statements] == ["DROP TABLE jobs"]
    assert m.rollback.wrapper is not None
    assert m.rollback.wrapper.lines == (2, 4)


def test_the_wrapper_does_not_change_the_checksums() -> None:
    wrapped = parse(f"{HEADER}BEGIN;\nCREATE TABLE jobs (id int);\nCOMMIT;\n{ROLLBACK}")
    plain = parse(f"{HEADER}CREATE TABLE jobs (id int);\n{ROLLBACK}")

    assert wrapped.checksum != plain.checksum  # the file's bytes differ
    assert wrapped.rollback.checksum == plain.rollback.checksum


REFUSED = {
    "commit alone": ("CREATE TABLE jobs (id int);\nCOMMIT;", [7]),
    "end alone": ("CREATE TABLE jobs (id int);\nEND;", [7]),
    "rollback": ("CREATE TABLE jobs (id int);\nROLLBACK;", [7]),
    "abort": ("ABORT;\nCREATE TABLE jobs (id int);", [6]),
    "savepoint": ("SAVEPOINT a;\nCREATE TABLE jobs (id int);\nRELEASE SAVEPOINT a;", [6, 8]),
    "rollback to": ("CREATE TABLE jobs (id int);\nROLLBACK TO SAVEPOINT a;", [7]),
    "commit and chain": ("BEGIN;\nCREATE TABLE jobs (id int);\nCOMMIT AND CHAIN;", [6, 8]),
    "rollback and chain": ("CREATE TABLE jobs (id int);\nROLLBACK AND CHAIN;", [7]),
    "prepare": ("CREATE TABLE jobs (id int);\nPREPARE TRANSACTION 'x';", [7]),
    "commit prepared": ("COMMIT PREPARED 'x';\nCREATE TABLE jobs (id int);", [6]),
    "set transaction": (
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE jobs (id int);",
        [6],
    ),
    "session characteristics": (
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY;\nCREATE TABLE jobs (id int);",
        [6],
    ),
    "begin alone": ("BEGIN;\nCREATE TABLE jobs (id int);", [6]),
    "a second begin": ("BEGIN;\nBEGIN;\nCREATE TABLE jobs (id int);\nCOMMIT;", [7]),
    # the outer BEGIN and COMMIT wrap the whole section; the inner COMMIT and BEGIN split it
    "two wrappers": (
        "BEGIN;\nCREATE TABLE jobs (id int);\nCOMMIT;\nBEGIN;\nSELECT 1;\nCOMMIT;",
        [8, 9],
    ),
    "wrapper with modes": (
        "BEGIN ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE jobs (id int);\nCOMMIT;",
        [6, 8],
    ),
    "read only wrapper": (
        "START TRANSACTION READ ONLY;\nCREATE TABLE jobs (id int);\nCOMMIT;",
        [6, 8],
    ),
    "ends with rollback": ("BEGIN;\nCREATE TABLE jobs (id int);\nROLLBACK;", [6, 8]),
    "commit inside a wrapper": (
        "BEGIN;\nCREATE TABLE jobs (id int);\nCOMMIT;\nSELECT 1;\nCOMMIT;",
        [8],
    ),
    "wrapper around concurrently": (
        "BEGIN;\nCREATE INDEX CONCURRENTLY i ON jobs (id);\nCOMMIT;",
        [7],
    ),
}


@pytest.mark.parametrize(("forward", "lines"), REFUSED.values(), ids=REFUSED.keys())
def test_other_transaction_control_in_a_forward_section_is_an_error_at_its_line(
    forward: str, lines: list[int]
) -> None:
    m = parse(f"{HEADER}{forward}\n{ROLLBACK}")

    assert [p.line for p in m.problems if p.code == "transaction-control"] == lines
    assert [line for rule, line in errors(m) if rule == "transaction-control"] == lines
    with pytest.raises(
        MalformedMigrationError, match=rf"001_x.sql:{lines[0]}: transaction-control: "
    ):
        require_runnable(m, forward=True)


@pytest.mark.parametrize(("section", "lines"), REFUSED.values(), ids=REFUSED.keys())
def test_other_transaction_control_in_a_rollback_section_is_an_error_at_its_line(
    section: str, lines: list[int]
) -> None:
    rollback = "".join(f"--   {line}\n" for line in section.splitlines())
    m = parse(
        f"{HEADER}CREATE TABLE jobs (id int);\n\n-- ROLLBACK\n{rollback}-- WARNING: back up.\n"
    )
    shifted = [line + 3 for line in lines]  # the section starts three lines lower

    assert [p.line for p in m.rollback.problems if p.code == "transaction-control"] == shifted
    with pytest.raises(
        MalformedMigrationError, match=rf"001_x.sql:{shifted[0]}: transaction-control: "
    ):
        require_runnable(m, forward=False)
    with pytest.raises(
        MalformedMigrationError, match=rf"001_x.sql:{shifted[0]}: transaction-control: "
    ):
        require_runnable(m, forward=True)  # apply refuses a rollback section it could not run


def test_the_refusal_says_what_the_statement_does_and_the_fix() -> None:
    m = parse(f"{HEADER}CREATE TABLE jobs (id int);\nend;\n{ROLLBACK}")

    assert m.problems[0].message == (
        "end (COMMIT) controls the transaction: backout runs each section as one transaction of "
        "its own (a dry run in one it always rolls back), which this would end, split or change; "
        "remove it (only one BEGIN; ... COMMIT; around the whole section is accepted, and is not "
        "sent)"
    )


def test_a_wrapper_around_a_non_transactional_statement_says_why() -> None:
    m = parse(f"{HEADER}BEGIN;\nCREATE INDEX CONCURRENTLY i ON jobs (id);\nCOMMIT;\n{ROLLBACK}")

    assert m.problems[0].message.startswith(
        "CREATE INDEX CONCURRENTLY cannot run inside a transaction, but the BEGIN at line 6 "
        "wraps it in one; remove the BEGIN and COMMIT"
    )


def test_a_non_transactional_statement_without_a_wrapper_stays_runnable() -> None:
    m = parse(f"{HEADER}CREATE INDEX CONCURRENTLY i ON jobs (id);\n{ROLLBACK}")

    assert m.statements[0].has(Flag.NON_TRANSACTIONAL)
    assert refusals(m, forward=True) == []


def test_words_that_mention_transactions_are_not_transaction_control() -> None:
    m = parse(
        f"{HEADER}CREATE TABLE transactions (id int);\n"
        "COMMENT ON TABLE transactions IS 'BEGIN; COMMIT;';\n"
        "SET LOCAL statement_timeout = '1s';\n"
        "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN COMMIT; END $$;\n"
        f"{ROLLBACK}"
    )

    assert m.problems == ()
    assert m.wrapper is None
    assert not any(s.has(Flag.TRANSACTION_CONTROL) for s in m.statements)


def test_unwrap_leaves_a_section_without_transaction_control_alone() -> None:
    statements = split("CREATE TABLE a (id int); DROP TABLE a;")

    section = unwrap(statements)

    assert section.statements == statements
    assert (section.wrapper, section.problems) == (None, ())


def test_a_wrapper_around_nothing_leaves_nothing_to_run() -> None:
    m = parse(f"{HEADER}BEGIN;\nCOMMIT;\n{ROLLBACK}")

    assert m.statements == ()
    assert ("forward-empty", 1) in errors(m)


def test_the_dry_run_guard_refuses_transaction_control_whatever_it_is_given() -> None:
    refuse_transaction_control(split("CREATE TABLE a (id int); DROP TABLE a;"))

    for sql in ("COMMIT", "end", "SAVEPOINT a", "SELECT 1; COMMIT", "SET TRANSACTION READ WRITE"):
        unflagged = Statement(sql=sql, line=3, end_line=3)  # as if nothing had checked it
        with pytest.raises(UsageError, match=r"line 3: .* a dry run never runs it"):
            refuse_transaction_control([unflagged])


def test_prepare_transaction_in_a_comment_block_is_read_as_sql_and_prepare_prose_as_a_note() -> (
    None
):
    m = parse(
        f"{HEADER}CREATE TABLE jobs (id int);\n\n-- ROLLBACK\n--   DROP TABLE jobs;\n"
        "--   PREPARE TRANSACTION 'x';\n-- Prepare the workers for the change.\n"
        "-- WARNING: back up.\n"
    )

    assert [(p.code, p.line) for p in m.rollback.problems] == [("transaction-control", 10)]
    assert m.rollback.notes == ("Prepare the workers for the change. WARNING: back up.",)


def test_show_and_its_json_say_the_wrapper_is_not_sent() -> None:
    from backout.cli.render import migration_json, migration_text

    m = parse(
        f"{HEADER}BEGIN;\nCREATE TABLE jobs (id int);\nCOMMIT;\n\n-- ROLLBACK\n"
        "--   START TRANSACTION;\n--   DROP TABLE jobs;\n--   END;\n"
        "-- WARNING: deletes jobs. Back up jobs.\n"
    )

    text = migration_text(m, str)
    data = migration_json(m, str)

    assert (
        "Forward SQL (1 statement)\n  note: BEGIN (line 6) and COMMIT (line 8) wrap the whole"
        in text
    )
    assert "  note: START TRANSACTION (line 11) and END (line 13) wrap the whole section" in text
    assert "BEGIN;" not in text.split("Forward SQL")[1]
    assert data["wrapper"]["begin_line"] == 6
    assert data["wrapper"]["commit_line"] == 8
    assert data["wrapper"]["sent"] is False
    assert data["rollback_wrapper"]["begin_line"] == 11
    assert [s["sql"] for s in data["rollback"]["statements"]] == ["DROP TABLE jobs"]
    assert parse(f"{HEADER}CREATE TABLE jobs (id int);\n{ROLLBACK}").wrapper is None
