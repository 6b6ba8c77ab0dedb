"""The migration file model: header, forward statements, the documented rollback, checksums."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from backout.errors import MalformedMigrationError
from backout.migrations.file import MigrationFile, parse_migration, read_migration
from backout.migrations.rollback_source import COMMENT_BLOCK, SIBLING_FILE
from backout.migrations.statements import Flag

BANNER = "-- " + "=" * 76

SEED_FILE = f"""\
-- Migration: 001_create_jobs.sql
-- Purpose: Create the jobs queue
-- Phase: 1
-- Checklist: checklist.txt 1.2

{BANNER}
-- JOBS
{BANNER}
-- A queue; a comment holding ; and the word ROLLBACK.

CREATE TABLE jobs (
  id bigserial PRIMARY KEY,
  note text DEFAULT 'a;b -- ROLLBACK'
);

CREATE FUNCTION update_updated_at_column() RETURNS trigger AS $$
BEGIN
  -- ROLLBACK
  NEW.updated_at := now();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

{BANNER}
-- ROLLBACK
{BANNER}
-- To rollback this migration:
--   DROP TRIGGER IF EXISTS trg_jobs_updated_at ON jobs;
--   DROP FUNCTION IF EXISTS update_updated_at_column();
--   DROP TABLE IF EXISTS jobs CASCADE;
--
-- WARNING: This will delete all job data. Backup before rollback.
"""


def parse(text: str, name: str = "001_create_jobs.sql", **siblings: str) -> MigrationFile:
    return parse_migration(Path("/m") / name, text.encode(), siblings=siblings)


def sqls(m: MigrationFile) -> list[str]:
    return [s.sql for s in m.rollback.statements]


def test_seed_file_gives_header_forward_rollback_and_notes() -> None:
    m = parse(SEED_FILE)

    assert m.version == "001"
    assert m.name == "001_create_jobs"
    assert dict(m.header) == {
        "Migration": "001_create_jobs.sql",
        "Purpose": "Create the jobs queue",
        "Phase": "1",
        "Checklist": "checklist.txt 1.2",
    }
    assert [(s.kind, s.line) for s in m.statements] == [
        ("CreateStmt", 11),
        ("CreateFunctionStmt", 16),
    ]
    assert m.rollback.source == COMMENT_BLOCK
    assert m.rollback.line == 25
    assert [(s.sql, s.line) for s in m.rollback.statements] == [
        ("DROP TRIGGER IF EXISTS trg_jobs_updated_at ON jobs", 28),
        ("DROP FUNCTION IF EXISTS update_updated_at_column()", 29),
        ("DROP TABLE IF EXISTS jobs CASCADE", 30),
    ]
    assert m.rollback.notes == ("WARNING: This will delete all job data. Backup before rollback.",)
    assert m.all_problems == ()


def test_checksums_are_sha256_of_the_file_bytes_and_of_the_rollback_section() -> None:
    m = parse(SEED_FILE)

    assert m.checksum == hashlib.sha256(SEED_FILE.encode()).hexdigest()
    section = SEED_FILE[SEED_FILE.rindex("-- ROLLBACK\n") :]
    assert m.rollback.checksum == hashlib.sha256(section.encode()).hexdigest()


def test_prose_edits_outside_the_rollback_leave_its_checksum_alone() -> None:
    edited = SEED_FILE.replace("-- A queue;", "-- The job queue;")

    assert parse(edited).rollback.checksum == parse(SEED_FILE).rollback.checksum
    assert parse(edited).checksum != parse(SEED_FILE).checksum


def test_the_word_rollback_inside_strings_and_function_bodies_is_not_a_heading() -> None:
    m = parse(SEED_FILE)

    assert "'a;b -- ROLLBACK'" in m.statements[0].sql
    assert "-- ROLLBACK" in m.statements[1].sql


def test_destructive_and_non_transactional_statements_are_flagged_in_both_sections() -> None:
    text = """\
CREATE INDEX CONCURRENTLY idx_jobs ON jobs (id);
-- ROLLBACK
--   DROP INDEX CONCURRENTLY idx_jobs;
--   DROP TABLE jobs;
"""
    m = parse(text)

    assert m.statements[0].flags == {Flag.NON_TRANSACTIONAL}
    assert [s.flags for s in m.rollback.statements] == [
        {Flag.NON_TRANSACTIONAL},
        {Flag.DESTROYS_DATA},
    ]


def test_psql_meta_commands_are_reported_with_their_line_and_not_parsed() -> None:
    text = "\\set ON_ERROR_STOP on\nCREATE TABLE t (id int);\n\\i other.sql\n"

    m = parse(text)

    assert [(p.code, p.line) for p in m.problems] == [
        ("psql-meta-command", 1),
        ("psql-meta-command", 3),
    ]
    assert [s.sql for s in m.statements] == ["CREATE TABLE t (id int)"]
    assert m.statements[0].line == 2


def test_forward_syntax_error_is_reported_with_parser_message_and_line() -> None:
    m = parse("CREATE TABLE t (id int);\n\nCREAT TABLE u (id int);\n")

    assert [(p.code, p.line) for p in m.problems] == [("sql-syntax", 3)]
    assert 'syntax error at or near "CREAT"' in m.problems[0].message


def test_a_sibling_rollback_file_is_used_when_the_file_has_no_block() -> None:
    sibling = "-- WARNING: drops the table\nDROP TABLE jobs;\n"

    m = parse("CREATE TABLE jobs (id int);\n", **{"001_create_jobs.rollback.sql": sibling})

    assert m.rollback.source == SIBLING_FILE
    assert m.rollback.path == Path("/m/001_create_jobs.rollback.sql")
    assert [(s.sql, s.line) for s in m.rollback.statements] == [("DROP TABLE jobs", 2)]
    assert m.rollback.notes == ("WARNING: drops the table",)


def test_no_rollback_is_an_empty_rollback_with_no_source() -> None:
    m = parse("CREATE TABLE jobs (id int);\n")

    assert m.rollback.source is None
    assert m.rollback.statements == ()
    assert m.rollback.checksum is None


def test_header_continuation_lines_join_the_previous_field() -> None:
    m = parse("-- Purpose: a long\n--    purpose line\n-- Phase: 2\n\nSELECT 1;\n")

    assert dict(m.header) == {"Purpose": "a long purpose line", "Phase": "2"}
    assert m.header_line("phase") == 3


def test_crlf_files_parse_like_lf_files() -> None:
    m = parse(SEED_FILE.replace("\n", "\r\n"))

    assert sqls(m) == sqls(parse(SEED_FILE))


def test_a_file_that_is_not_utf8_is_malformed_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "001_latin1.sql"
    path.write_bytes(b"SELECT 1;\n-- caf\xe9\n")

    with pytest.raises(MalformedMigrationError) as caught:
        read_migration(path)

    assert caught.value.line == 2
    assert str(caught.value).startswith(f"{path}:2: is not UTF-8 text")


def test_read_migration_reads_the_sibling_rollback_file(tmp_path: Path) -> None:
    (tmp_path / "002_add.sql").write_text("CREATE TABLE a (id int);\n")
    (tmp_path / "002_add.rollback.sql").write_text("DROP TABLE a;\n")

    m = read_migration(tmp_path / "002_add.sql")

    assert sqls(m) == ["DROP TABLE a"]
    assert m.folder == tmp_path
