"""The documented rollback, as real teams write it: never prose turned into SQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from backout.migrations.file import MigrationFile, parse_migration

FORWARD = "CREATE TABLE jobs (id int);\n\n"


def parse(text: str) -> MigrationFile:
    return parse_migration(Path("/m/001_x.sql"), text.encode())


def rollback_sql(text: str) -> list[str]:
    return [s.sql for s in parse(FORWARD + text).rollback.statements]


def problems(text: str) -> list[tuple[str, int]]:
    return [(p.code, p.line) for p in parse(FORWARD + text).all_problems]


@pytest.mark.parametrize(
    "heading",
    [
        "-- ROLLBACK",
        "-- Rollback",
        "-- Rollback:",
        "-- ROLLBACK INSTRUCTIONS",
        "-- ROLLBACK PLAN",
        "-- Down",
        "-- == ROLLBACK ==",
        "-- " + "=" * 20 + "\n-- ROLLBACK\n-- " + "=" * 20,
    ],
)
def test_heading_variants_are_all_recognised(heading: str) -> None:
    assert rollback_sql(f"{heading}\n--   DROP TABLE jobs;\n") == ["DROP TABLE jobs"]


def test_sql_lines_without_indentation_are_read() -> None:
    assert rollback_sql("-- Rollback:\n-- DROP TABLE jobs;\n-- DROP TYPE mood;\n") == [
        "DROP TABLE jobs",
        "DROP TYPE mood",
    ]


def test_a_statement_may_continue_over_several_comment_lines() -> None:
    text = "-- ROLLBACK\n--   ALTER TABLE jobs\n--     DROP COLUMN note;\n"

    assert rollback_sql(text) == ["ALTER TABLE jobs\n  DROP COLUMN note"]


def test_several_statements_on_one_line_are_split_by_the_parser() -> None:
    assert rollback_sql("-- ROLLBACK\n--   DROP TABLE a; DROP TABLE b;\n") == [
        "DROP TABLE a",
        "DROP TABLE b",
    ]


def test_a_block_comment_under_the_heading_holds_sql_with_dollar_bodies() -> None:
    text = """\
-- ROLLBACK
/*
CREATE OR REPLACE FUNCTION f() RETURNS int AS $$
BEGIN
  RETURN 1;
END;
$$ LANGUAGE plpgsql;

DROP TABLE jobs;
*/
"""
    m = parse(FORWARD + text)

    assert [s.sql.split("\n")[0] for s in m.rollback.statements] == [
        "CREATE OR REPLACE FUNCTION f() RETURNS int AS $$",
        "DROP TABLE jobs",
    ]
    assert [s.line for s in m.rollback.statements] == [5, 11]


def test_prose_lines_become_notes_and_boilerplate_is_dropped() -> None:
    text = """\
-- ROLLBACK
-- To rollback this migration:
--   1. Drop the trigger first
--   DROP TRIGGER IF EXISTS trg ON jobs;
--
-- WARNING: This will delete all job data.
-- Backup before rollback.
--
-- Update the dashboards afterwards.
"""
    m = parse(FORWARD + text)

    assert [s.sql for s in m.rollback.statements] == ["DROP TRIGGER IF EXISTS trg ON jobs"]
    assert m.rollback.notes == (
        "1. Drop the trigger first",
        "WARNING: This will delete all job data. Backup before rollback.",
        "Update the dashboards afterwards.",
    )
    assert m.all_problems == ()


def test_numbered_sql_steps_run_the_sql_without_the_number() -> None:
    assert rollback_sql("-- ROLLBACK\n--   1. DROP INDEX i;\n--   2) DROP TABLE jobs;\n") == [
        "DROP INDEX i",
        "DROP TABLE jobs",
    ]


def test_sql_the_parser_rejects_is_a_problem_with_its_line_not_a_note() -> None:
    assert problems("-- ROLLBACK\n--   DROP TABEL jobs;\n") == [("rollback-unparseable", 4)]
    assert rollback_sql("-- ROLLBACK\n--   DROP TABEL jobs;\n") == []


def test_sql_without_its_semicolon_is_a_problem_not_a_guess() -> None:
    assert problems("-- ROLLBACK\n--   DROP TABLE jobs\n") == [("rollback-unterminated", 4)]


def test_keyword_led_text_that_is_neither_sql_nor_prose_is_reported() -> None:
    # "VACUUM afterwards" parses as SQL, but nothing says it is meant to run.
    assert problems("-- ROLLBACK\n--   Vacuum afterwards\n") == [("rollback-unterminated", 4)]


def test_a_fragment_ending_with_a_semicolon_is_reported() -> None:
    assert problems("-- ROLLBACK\n--   Step 2: DROP VIEW v;\n") == [("rollback-unparseable", 4)]


def test_a_keyword_led_sentence_is_a_note() -> None:
    m = parse(FORWARD + "-- ROLLBACK\n-- Drop the old view if it still exists:\n-- DROP VIEW v;\n")

    assert m.rollback.notes == ("Drop the old view if it still exists:",)
    assert [s.sql for s in m.rollback.statements] == ["DROP VIEW v"]


def test_psql_meta_commands_in_the_block_are_reported() -> None:
    assert problems("-- ROLLBACK\n--   \\c other\n--   DROP TABLE jobs;\n") == [
        ("psql-meta-command", 4)
    ]


def test_uncommented_sql_after_the_heading_is_reported_and_not_applied() -> None:
    m = parse(FORWARD + "-- ROLLBACK\nDROP TABLE jobs;\n")

    assert [(p.code, p.line) for p in m.all_problems] == [("rollback-uncommented", 4)]
    assert [s.sql for s in m.statements] == ["CREATE TABLE jobs (id int)"]


def test_an_earlier_rollback_remark_followed_by_sql_is_not_the_section() -> None:
    text = "-- Rollback: not needed for the index\nCREATE INDEX i ON jobs (id);\n\n"
    text += "-- ROLLBACK\n--   DROP INDEX i;\n"

    m = parse(FORWARD + text)

    assert m.rollback.line == 6
    assert [s.sql for s in m.rollback.statements] == ["DROP INDEX i"]
    assert [s.sql for s in m.statements][-1] == "CREATE INDEX i ON jobs (id)"


def test_an_inline_rollback_after_the_heading_colon_is_read() -> None:
    assert rollback_sql("-- Rollback: DROP TABLE jobs;\n") == ["DROP TABLE jobs"]


def test_a_heading_with_no_sql_has_no_statements_and_no_problems() -> None:
    m = parse(FORWARD + "-- ROLLBACK\n-- To rollback this migration:\n--\n")

    assert m.rollback.found
    assert m.rollback.statements == ()
    assert m.rollback.notes == ()
    assert m.all_problems == ()
