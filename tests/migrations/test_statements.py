"""Statements as PostgreSQL's parser splits them, with their lines and what they do."""

from __future__ import annotations

import pytest

from backout.migrations.statements import Flag, LineKind, SqlSyntaxError, line_kinds, split


def test_semicolons_in_strings_comments_and_bodies_do_not_split() -> None:
    text = """\
SELECT 'a;b';  -- c;d
/* e; */ CREATE FUNCTION f() RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT 1;
  SELECT 2;
END;
DO $$ BEGIN PERFORM 1; END $$;
"""
    assert [(s.kind, s.line) for s in split(text)] == [
        ("SelectStmt", 1),
        ("CreateFunctionStmt", 2),
        ("DoStmt", 7),
    ]


def test_first_line_offsets_line_numbers() -> None:
    assert [s.line for s in split("SELECT 1;\n\nSELECT 2;", first_line=10)] == [10, 12]


def test_a_syntax_error_carries_the_parser_message_and_line() -> None:
    with pytest.raises(SqlSyntaxError) as caught:
        split("SELECT 1;\nSELEC 2;\n", first_line=5)

    assert caught.value.problem.line == 6
    assert caught.value.problem.message == (
        'PostgreSQL\'s parser rejects this: syntax error at or near "SELEC"'
    )


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("CREATE INDEX CONCURRENTLY i ON t (x)", "CREATE INDEX CONCURRENTLY"),
        ("DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY"),
        ("REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"),
        ("REINDEX DATABASE d", "REINDEX SYSTEM/DATABASE"),
        ("VACUUM t", "VACUUM"),
        ("CREATE DATABASE d", "CREATE DATABASE"),
        ("DROP DATABASE d", "DROP DATABASE"),
        ("ALTER SYSTEM SET work_mem = '1MB'", "ALTER SYSTEM"),
        ("ALTER TABLE t DETACH PARTITION p CONCURRENTLY", "DETACH PARTITION CONCURRENTLY"),
        ("CLUSTER", "CLUSTER without a table"),
    ],
)
def test_statements_that_cannot_run_in_a_transaction_are_flagged(sql: str, reason: str) -> None:
    (statement,) = split(sql)

    assert Flag.NON_TRANSACTIONAL in statement.flags
    assert statement.non_transactional_reason == reason


@pytest.mark.parametrize(
    "sql", ["ANALYZE t", "CREATE INDEX i ON t (x)", "CLUSTER t", "REFRESH MATERIALIZED VIEW v"]
)
def test_statements_that_run_in_a_transaction_are_not_flagged(sql: str) -> None:
    assert split(sql)[0].flags == frozenset()


@pytest.mark.parametrize(
    ("sql", "described"),
    [
        ("DROP TABLE IF EXISTS public.jobs CASCADE", ["DROP TABLE public.jobs CASCADE"]),
        ("DROP SCHEMA s", ["DROP SCHEMA s"]),
        ("DROP TYPE mood CASCADE", ["DROP TYPE mood CASCADE"]),
        ("ALTER TABLE e DROP COLUMN x, ADD COLUMN y int", ["DROP COLUMN e.x"]),
        ("TRUNCATE a, b", ["TRUNCATE a", "TRUNCATE b"]),
        ("DELETE FROM jobs WHERE id = 1", ["DELETE FROM jobs"]),
        ("UPDATE jobs SET x = 1", ["UPDATE jobs"]),
        ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", ["MERGE INTO t"]),
        (
            "INSERT INTO t (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET x = 1",
            ["INSERT ... ON CONFLICT DO UPDATE t"],
        ),
    ],
)
def test_what_a_destructive_statement_destroys_is_named(sql: str, described: list[str]) -> None:
    (statement,) = split(sql)

    assert Flag.DESTROYS_DATA in statement.flags
    assert [loss.describe() for loss in statement.data_loss] == described


@pytest.mark.parametrize(
    "sql",
    [
        "DROP INDEX i",
        "DROP TRIGGER t ON x",
        "DROP FUNCTION f()",
        "INSERT INTO t (id) VALUES (1) ON CONFLICT DO NOTHING",
    ],
)
def test_dropping_objects_without_data_is_not_destructive(sql: str) -> None:
    assert split(sql)[0].flags == frozenset()


def test_transaction_control_is_flagged() -> None:
    assert [s.flags for s in split("BEGIN; COMMIT;")] == [{Flag.TRANSACTION_CONTROL}] * 2


def test_line_kinds_tell_comments_from_code_inside_bodies() -> None:
    text = "-- c\nCREATE FUNCTION f() RETURNS int AS $$\n-- body\n$$ LANGUAGE sql;\n\\i x.sql\n"

    assert line_kinds(text) == (
        LineKind.COMMENT,
        LineKind.CODE,
        LineKind.CODE,
        LineKind.CODE,
        LineKind.META,
        LineKind.BLANK,
    )


def test_data_modifying_ctes_are_destructive() -> None:
    sql = "WITH f AS (UPDATE e SET s = 1 RETURNING id) INSERT INTO log (id) SELECT id FROM f"

    assert [loss.describe() for loss in split(sql)[0].data_loss] == ["UPDATE e"]
