"""sql-migrate files read as sql-migrate reads them: the fixture folders, refusals with their
line, and generated files round-tripped through the reader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backout.errors import MalformedMigrationError
from backout.migrations.catalog import discover
from backout.migrations.file import MigrationFile
from backout.migrations.formats import get_format
from backout.migrations.lint import refusals, require_runnable
from tests.migrations.formats.test_sections import (
    FIXTURES,
    VOCABULARY,
    Layout,
    Stmt,
    assert_sections,
    fixture,
    read_text,
    render,
    sections_of,
)
from tests.runner import run

HERE = FIXTURES / "sql-migrate"
FORMAT = get_format("sql-migrate")


def read(folder: str, name: str) -> MigrationFile:
    return fixture("sql-migrate", folder, name)


# (file, forward [(line, start of the SQL)], down [(line, start)], no transaction up, down)
MIGRATIONS = [
    ("1_create_authors.sql", [(4, "CREATE TABLE authors")], [(11, "DROP TABLE authors")], False),
    ("2_create_articles.sql", [(6, "CREATE TABLE articles")], [(3, "DROP TABLE articles")], False),
    (
        "3_articles_search.sql",
        [
            (2, "ALTER TABLE articles ADD COLUMN search"),
            (5, "CREATE FUNCTION articles_search_refresh()"),
            (13, "CREATE TRIGGER articles_search"),
        ],
        [
            (17, "DROP TRIGGER articles_search"),
            (18, "DROP FUNCTION articles_search_refresh()"),
            (20, "ALTER TABLE articles DROP COLUMN search"),
        ],
        False,
    ),
    (
        "10_index_articles_title.sql",
        [(2, "CREATE INDEX CONCURRENTLY articles_title")],
        [(5, "DROP INDEX CONCURRENTLY articles_title")],
        True,
    ),
    ("11_authors_bio.sql", [(2, "ALTER TABLE authors ADD COLUMN bio")], [], False),
    (
        "12_authors_email.sql",
        [(2, "ALTER TABLE authors ADD COLUMN email text"), (3, "UPDATE authors SET email")],
        [(7, "ALTER TABLE authors DROP COLUMN email")],
        False,
    ),
]


@pytest.mark.parametrize(("name", "forward", "down", "no_transaction"), MIGRATIONS)
def test_the_fixture_folder_reads_as_sql_migrate_reads_it(
    name: str, forward: list[tuple[int, str]], down: list[tuple[int, str]], no_transaction: bool
) -> None:
    m = read("migrations", name)

    assert_sections(m, forward, down, no_transaction=no_transaction, source="sql-migrate")


def test_versions_sort_by_number_not_by_name() -> None:
    catalog = discover(HERE, [HERE / "migrations"])

    assert [e.version for e in catalog.entries] == ["1", "2", "3", "10", "11", "12"]


def test_notransaction_is_per_section() -> None:
    text = "-- +migrate Up notransaction\nSELECT 1;\n-- +migrate Down\nSELECT 2;\n"
    m = read_text("sql-migrate", "1_x.sql", text)

    assert m.no_transaction is True
    assert m.rollback.no_transaction is False


def test_the_down_section_may_come_first_and_the_file_may_have_crlf_line_ends() -> None:
    assert b"\r\n" in (HERE / "migrations/2_create_articles.sql").read_bytes()

    m = read("migrations", "2_create_articles.sql")

    assert m.rollback.line == 1
    assert m.rollback.text == (
        "-- +migrate Down\n-- WARNING: drops every article. Back up articles first.\n"
        "DROP TABLE articles;\n"
    )


def test_a_down_section_with_only_a_comment_is_no_rollback() -> None:
    m = read("migrations", "11_authors_bio.sql")

    assert m.rollback.found
    assert m.rollback.statements == ()
    assert m.rollback.notes == ("nothing to undo: the column stays.",)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("1_marker_in_a_string.sql", "'Write the undo after\n-- +migrate Down\nin each file.'"),
        ("2_marker_in_a_function_body.sql", "chr(10) ||\n-- +migrate Down\n       'DROP"),
    ],
)
def test_markers_inside_strings_and_bodies_never_split_the_file(name: str, body: str) -> None:
    m = read("traps", name)

    assert any(body in s.sql for s in m.statements)
    assert [s.sql.split()[0] for s in m.rollback.statements] == ["DROP"]
    assert m.all_problems == ()


REFUSED = [
    ("1_lowercase_down.sql", 4, "format-mismatch", "ignores the line and would run what follows"),
    ("2_no_space_after_dashes.sql", 4, "format-mismatch", "starting exactly with `-- +migrate `"),
    ("3_indented_down.sql", 4, "format-mismatch", "starting exactly with `-- +migrate `"),
    ("4_two_spaces_after_dashes.sql", 4, "format-mismatch", "starting exactly with"),
    ("5_no_command.sql", 4, "format-mismatch", "looks like a sql-migrate marker"),
    ("6_statement_never_ended.sql", 2, "format-mismatch", "is never ended"),
    ("7_missing_semicolon.sql", 2, "sql-syntax", "no terminating `;`"),
    ("8_sql_before_up.sql", 1, "format-mismatch", "SQL before the first section marker"),
    ("9_two_down_sections.sql", 7, "format-mismatch", "a second `-- +migrate Down` marker"),
    ("10_no_markers.sql", 1, "format-mismatch", "no `-- +migrate Up` marker"),
    ("11_goose_markers.sql", 4, "format-mismatch", 'set format = "goose"'),
    ("create_t.sql", 1, "name-format", "sql-migrate sorts it by name"),
]


@pytest.mark.parametrize(("name", "line", "code", "words"), REFUSED)
def test_a_malformed_file_is_refused_with_its_line(
    name: str, line: int, code: str, words: str
) -> None:
    m = read("refused", name)

    assert any(p.line == line and p.code == code and words in p.message for p in m.all_problems)
    with pytest.raises(MalformedMigrationError, match=rf"{name}:{line}: {code}: "):
        require_runnable(m, forward=True)
    if code == "format-mismatch":
        assert refusals(m, forward=False)


def test_show_json_gives_the_sections_files_and_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(HERE / "migrations", tmp_path / "migrations")
    (tmp_path / "backout.toml").write_text('formats = {"migrations" = "sql-migrate"}\n')
    monkeypatch.chdir(tmp_path)

    result = run("show", "10", "--json")

    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    path = "migrations/10_index_articles_title.sql"
    assert shown["format"] == "sql-migrate"
    assert shown["statements"] == [
        {"sql": "CREATE INDEX CONCURRENTLY articles_title ON articles (title)", "line": 2}
    ]
    assert shown["rollback"]["statements"] == [
        {"sql": "DROP INDEX CONCURRENTLY articles_title", "line": 5}
    ]
    assert shown["sections"] == {
        "forward": {"path": path, "lines": [2, 2]},
        "rollback": {"path": path, "lines": [5, 5]},
    }


# --- generated files --------------------------------------------------------------------------


@st.composite
def marker(draw: st.DrawFn, command: str) -> str:
    """A marker sql-migrate reads: exact, with options and spaces after the command."""
    options = draw(st.sampled_from(("", " notransaction", "  notransaction ", " -- a remark")))
    return f"-- +migrate {command}{options}"


@st.composite
def statements(draw: st.DrawFn, *, least: int) -> list[Stmt]:
    drawn = draw(st.lists(st.sampled_from(VOCABULARY), min_size=least, max_size=4))
    out = []
    for sql in drawn:
        block = draw(st.booleans())
        out.append(Stmt(sql, block=block, semicolon=not block or draw(st.booleans())))
    return out


@st.composite
def sql_migrate_files(draw: st.DrawFn) -> tuple[Layout, str]:
    sections = [
        ("up", draw(marker("Up")), draw(statements(least=1))),
        ("down", draw(marker("Down")), draw(statements(least=0))),
    ]
    if draw(st.booleans()):
        sections.reverse()
    spec = Layout(
        sections=sections,
        preamble=draw(st.sampled_from(((), ("-- Adds widgets.", "")))),
        begin="-- +migrate StatementBegin",
        end="-- +migrate StatementEnd",
        gap=draw(st.integers(0, 2)),
    )
    return spec, draw(st.sampled_from(("\n", "\r\n")))


@settings(max_examples=150, deadline=None)
@given(sql_migrate_files())
def test_generated_sql_migrate_files_round_trip(drawn: tuple[Layout, str]) -> None:
    spec, newline = drawn
    written = render(spec, "-- +migrate Down")

    m = read_text("sql-migrate", "7_generated.sql", written.text, newline)

    assert m.all_problems == ()
    assert sections_of(m) == (written.forward, written.down)
    markers = {role: line for role, line, _ in spec.sections}
    assert m.no_transaction is ("notransaction" in markers["up"])
    assert m.rollback.no_transaction is ("notransaction" in markers["down"])


NEAR_MISSES = (
    "-- +migrate down",
    "-- +migrate DOWN",
    "--+migrate Down",
    "--  +migrate Down",
    "  -- +migrate Down",
    "-- + migrate Down",
    "-- migrate Down",
)


@settings(max_examples=100, deadline=None)
@given(sql_migrate_files(), st.sampled_from(NEAR_MISSES))
def test_a_down_marker_sql_migrate_would_not_read_refuses_the_file(
    drawn: tuple[Layout, str], near_miss: str
) -> None:
    spec, newline = drawn
    sections = [
        (role, near_miss if role == "down" else line, body) for role, line, body in spec.sections
    ]
    written = render(Layout(sections, spec.preamble, spec.begin, spec.end), "-- +migrate Down")

    m = read_text("sql-migrate", "7_generated.sql", written.text, newline)

    line = written.marker_lines["down"]
    assert any(p.line == line and p.code == "format-mismatch" for p in m.problems)
    assert refusals(m, forward=True)
    assert refusals(m, forward=False)
