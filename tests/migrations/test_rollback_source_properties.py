"""Properties of the rollback parser, checked on generated input."""

from __future__ import annotations

from pathlib import Path

import pglast
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from backout.errors import MalformedMigrationError
from backout.migrations.file import parse_migration

BANNER = "-- " + "=" * 76
PATH = Path("/m/001_generated.sql")

identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
literals = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029"),
    max_size=24,
).map(lambda s: "'" + s.replace("'", "''") + "'")

TEMPLATES = (
    "DROP TABLE IF EXISTS {0} CASCADE",
    "ALTER TABLE {0}\n  DROP COLUMN IF EXISTS {1}",
    "UPDATE {0} SET {1} = {2} WHERE {1} IS NULL",
    "DELETE FROM {0}\n WHERE {1} = {2}",
    "COMMENT ON TABLE {0} IS {2}",
    "CREATE OR REPLACE FUNCTION {0}() RETURNS text AS $$\nBEGIN\n  RETURN {2};\nEND;\n"
    "$$ LANGUAGE plpgsql",
    "CREATE FUNCTION {0}() RETURNS text LANGUAGE sql\n"
    "BEGIN ATOMIC\n  SELECT {2};\n  SELECT {2};\nEND",
    "INSERT INTO {0} ({1}) VALUES ({2})",
)


@st.composite
def statements(draw: st.DrawFn) -> str:
    template = draw(st.sampled_from(TEMPLATES))
    sql = template.format(draw(identifiers), draw(identifiers), draw(literals))
    try:
        pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        assume(False)  # an identifier that is a reserved word
    return sql


def seed_block(sqls: list[str], notes: list[str]) -> str:
    """The strategy document's ROLLBACK block holding ``sqls``."""
    lines = [BANNER, "-- ROLLBACK", BANNER, "-- To rollback this migration:"]
    for sql in sqls:
        lines += [f"--   {line}" for line in f"{sql};".split("\n")]
    for note in notes:
        lines += ["--", f"-- {note}"]
    return "\n".join(lines) + "\n"


@given(st.lists(statements(), min_size=1, max_size=5))
@settings(max_examples=200, deadline=None)
def test_statements_rendered_into_the_seed_block_come_back_identical(sqls: list[str]) -> None:
    text = "CREATE TABLE jobs (id int);\n\n" + seed_block(sqls, ["WARNING: data is lost."])

    m = parse_migration(PATH, text.encode())

    assert [s.sql for s in m.rollback.statements] == sqls
    assert m.rollback.notes == ("WARNING: data is lost.",)
    assert m.all_problems == ()


words = st.sampled_from(
    "drop table update delete the jobs data before after run vacuum analyze set reset "
    "warning backup restore then if it exists select all rows column index".split()
)
prose_lines = st.lists(words, min_size=1, max_size=8).map(" ".join)


@given(st.lists(prose_lines, min_size=1, max_size=6))
@settings(max_examples=200, deadline=None)
def test_prose_without_semicolons_never_becomes_sql(lines: list[str]) -> None:
    text = "SELECT 1;\n-- ROLLBACK\n" + "".join(f"-- {line}\n" for line in lines)

    m = parse_migration(PATH, text.encode())

    assert m.rollback.statements == ()


@given(st.text(max_size=400))
@settings(max_examples=300, deadline=None)
def test_arbitrary_text_never_crashes_the_parser(text: str) -> None:
    m = parse_migration(PATH, text.encode())

    for statement in (*m.statements, *m.rollback.statements):
        pglast.parse_sql(statement.sql)  # everything backout calls SQL, the parser accepts


FRAGMENTS = st.sampled_from(
    [
        "-- ROLLBACK",
        "-- Rollback:",
        BANNER,
        "--   DROP TABLE jobs;",
        "--   ALTER TABLE jobs",
        "--     DROP COLUMN note;",
        "-- WARNING: deletes data.",
        "/*",
        "*/",
        "$$",
        "'",
        "CREATE TABLE jobs (id int);",
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;",
        "\\i other.sql",
        "--",
        "",
        "1. Drop the trigger",
        "--   1. DROP INDEX i;",
    ]
)


@given(st.lists(FRAGMENTS | st.text(max_size=30), max_size=25))
@settings(max_examples=300, deadline=None)
def test_migration_shaped_text_never_crashes_the_parser(lines: list[str]) -> None:
    m = parse_migration(PATH, "\n".join(lines).encode())

    for statement in m.rollback.statements:
        pglast.parse_sql(statement.sql)


@given(st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_arbitrary_bytes_are_parsed_or_rejected_as_malformed(data: bytes) -> None:
    try:
        parse_migration(PATH, data)
    except MalformedMigrationError as exc:
        error: MalformedMigrationError | None = exc
    else:
        error = None

    assert error is None or error.path == PATH
