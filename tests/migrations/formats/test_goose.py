"""goose files read as goose reads them: the fixture folders, refusals with their line, and
generated files round-tripped through the reader."""

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

HERE = FIXTURES / "goose"
GOOSE = get_format("goose")


def read(folder: str, name: str) -> MigrationFile:
    return fixture("goose", folder, name)


# (file, forward [(line, start of the SQL)], down [(line, start)], no transaction)
MIGRATIONS = [
    (
        "00001_create_accounts.sql",
        [(5, "CREATE TABLE accounts ("), (10, "COMMENT ON TABLE accounts")],
        [(14, "DROP TABLE accounts")],
        False,
    ),
    (
        "00002_touch_updated_at.sql",
        [
            (2, "ALTER TABLE accounts ADD COLUMN updated_at"),
            (5, "CREATE OR REPLACE FUNCTION touch_updated_at()"),
            (13, "CREATE TRIGGER accounts_touch"),
        ],
        [
            (18, "DROP TRIGGER IF EXISTS accounts_touch"),
            (19, "DROP FUNCTION IF EXISTS touch_updated_at()"),
            (22, "ALTER TABLE accounts DROP COLUMN updated_at"),
        ],
        False,
    ),
    (
        "00003_index_accounts_email_lower.sql",
        [(4, "CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_email_lower")],
        [(7, "DROP INDEX CONCURRENTLY IF EXISTS accounts_email_lower")],
        True,
    ),
    (
        "00004_create_plans.sql",
        [(2, "CREATE TABLE plans ("), (6, "INSERT INTO plans (code, description) VALUES")],
        [(12, "DROP TABLE plans")],
        False,
    ),
    (
        "00005_add_accounts_nickname.sql",
        [(2, "ALTER TABLE accounts ADD COLUMN nickname")],
        [],
        False,
    ),
    (
        "00006_create_reports.sql",
        [(3, "CREATE TABLE reports"), (5, "INSERT INTO reports (id, title) VALUES (1, 'Revenue")],
        [(9, "DROP TABLE reports")],
        False,
    ),
    (
        "20240115093000_add_accounts_plan.sql",
        [(3, "ALTER TABLE accounts ADD COLUMN plan text"), (5, "UPDATE accounts SET plan")],
        [(9, "ALTER TABLE accounts DROP COLUMN plan")],
        False,
    ),
]


@pytest.mark.parametrize(("name", "forward", "down", "no_transaction"), MIGRATIONS)
def test_the_fixture_folder_reads_as_goose_reads_it(
    name: str, forward: list[tuple[int, str]], down: list[tuple[int, str]], no_transaction: bool
) -> None:
    m = read("migrations", name)

    assert_sections(m, forward, down, no_transaction=no_transaction, source="goose")
    assert m.format == "goose"


def test_the_folder_sorts_sequences_before_timestamps() -> None:
    catalog = discover(HERE, [HERE / "migrations"])

    assert [e.version for e in catalog.entries] == [
        "00001",
        "00002",
        "00003",
        "00004",
        "00005",
        "00006",
        "20240115093000",
    ]
    assert {e.format for e in catalog.entries} == {"goose"}


def test_a_function_body_in_a_statement_block_is_one_statement() -> None:
    m = read("migrations", "00002_touch_updated_at.sql")

    body = m.statements[1].sql
    assert body.count(";") == 3
    assert body.endswith("$$ LANGUAGE plpgsql")
    # a block of two statements (goose sends it at once) is two statements here
    assert [s.line for s in m.rollback.statements[:2]] == [18, 19]


def test_a_block_needs_no_semicolon() -> None:
    m = read("migrations", "20240115093000_add_accounts_plan.sql")

    assert (
        m.statements[0].sql == "ALTER TABLE accounts ADD COLUMN plan text REFERENCES plans (code)"
    )


def test_crlf_and_the_annotations_in_other_cases_and_spacings() -> None:
    path = HERE / "migrations/00004_create_plans.sql"
    assert b"\r\n" in path.read_bytes()

    m = read("migrations", "00004_create_plans.sql")

    assert m.rollback.line == 10
    assert m.rollback.text.startswith("--  +goose   DOWN\n")


def test_an_empty_down_section_is_no_rollback() -> None:
    m = read("migrations", "00005_add_accounts_nickname.sql")

    assert m.rollback.found
    assert m.rollback.statements == ()
    assert m.rollback.problems == ()


def test_envsub_is_noted_and_never_applied() -> None:
    m = read("migrations", "00006_create_reports.sql")

    assert any("ENVSUB ON at line 1" in c for c in m.comments)
    assert m.rollback.notes == (
        "WARNING: drops the reports and their rows. Back up reports first.",
    )
    assert "$USD" in m.statements[1].sql


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("00001_marker_in_a_string.sql", "How to write a goose file:\n-- +goose Down\ngoes"),
        ("00002_marker_in_a_function_body.sql", "'-- +goose Up' || chr(10) ||\n-- +goose Down\n"),
    ],
)
def test_markers_inside_strings_and_bodies_never_split_the_file(name: str, body: str) -> None:
    m = read("traps", name)

    assert any(body in s.sql for s in m.statements)
    assert len(m.rollback.statements) == 1
    assert m.rollback.statements[0].sql.startswith("DROP ")
    assert m.all_problems == ()


# (file, line, code, words of the message)
REFUSED = [
    ("00001_indented_down.sql", 4, "format-mismatch", "it is indented: goose refuses the file"),
    ("00002_uppercase_plus_goose.sql", 4, "format-mismatch", "would take it for a comment"),
    ("00003_down_before_up.sql", 1, "format-mismatch", "comes before `-- +goose Up` (line 4)"),
    ("00004_no_up.sql", 1, "format-mismatch", "no `-- +goose Up` marker"),
    ("00005_two_up_sections.sql", 4, "format-mismatch", "a second `-- +goose Up` marker"),
    ("00006_statement_never_ended.sql", 2, "format-mismatch", "is never ended"),
    ("00007_missing_semicolon.sql", 2, "sql-syntax", "no terminating `;`"),
    ("00008_annotation_with_a_remark.sql", 4, "format-mismatch", "goose knows only Up, Down"),
    ("00009_sql_before_up.sql", 1, "format-mismatch", "SQL before the first section marker"),
    ("00010_envsub_variable.sql", 4, "format-mismatch", "goose substitutes environment"),
    ("00011_dbmate_markers.sql", 4, "format-mismatch", "is a dbmate marker, but this folder"),
    ("00012_statement_end_alone.sql", 3, "format-mismatch", "without a `-- +goose Statement"),
    ("00013_down_statement_never_ended.sql", 5, "rollback-unterminated", "no terminating"),
    ("00000_version_zero.sql", 1, "name-format", "goose refuses version 0"),
    ("create_t.sql", 1, "name-format", "goose needs `<version>_<name>.sql`"),
]


@pytest.mark.parametrize(("name", "line", "code", "words"), REFUSED)
def test_a_malformed_file_is_refused_with_its_line(
    name: str, line: int, code: str, words: str
) -> None:
    m = read("refused", name)

    assert any(p.line == line and p.code == code and words in p.message for p in m.all_problems)
    with pytest.raises(MalformedMigrationError, match=rf"{name}:{line}: {code}: "):
        require_runnable(m, forward=True)
    if code in ("format-mismatch", "rollback-unterminated"):
        assert refusals(m, forward=False)


def test_show_json_gives_the_sections_files_and_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(HERE / "migrations", tmp_path / "db/migrations")
    (tmp_path / "backout.toml").write_text('migrations = ["db/migrations"]\nformat = "goose"\n')
    monkeypatch.chdir(tmp_path)

    result = run("show", "00002", "--json")

    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    path = "db/migrations/00002_touch_updated_at.sql"
    assert shown["format"] == "goose"
    assert shown["statements"] == [
        {
            "sql": "ALTER TABLE accounts ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now()",
            "line": 2,
        },
        {
            "sql": "CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger AS $$\n"
            "BEGIN\n    NEW.updated_at := now();\n    RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql",
            "line": 5,
        },
        {
            "sql": "CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts\n"
            "    FOR EACH ROW EXECUTE FUNCTION touch_updated_at()",
            "line": 13,
        },
    ]
    assert shown["rollback"]["statements"] == [
        {"sql": "DROP TRIGGER IF EXISTS accounts_touch ON accounts", "line": 18},
        {"sql": "DROP FUNCTION IF EXISTS touch_updated_at()", "line": 19},
        {"sql": "ALTER TABLE accounts DROP COLUMN updated_at", "line": 22},
    ]
    assert shown["rollback"]["source"] == "goose"
    assert shown["sections"] == {
        "forward": {"path": path, "lines": [2, 14]},
        "rollback": {"path": path, "lines": [18, 22]},
    }
    assert shown["problems"] == []


# --- generated files --------------------------------------------------------------------------

WORDS = {
    "up": ("Up", "up", "UP", "uP"),
    "down": ("Down", "down", "DOWN", "dOwN"),
    "begin": ("StatementBegin", "statementbegin", "STATEMENTBEGIN"),
    "end": ("StatementEnd", "statementend", "STATEMENTEND"),
    "no": ("NO TRANSACTION", "no transaction", "No Transaction"),
}


@st.composite
def annotation(draw: st.DrawFn, word: str) -> str:
    """An annotation goose reads: any case, any spacing after the dashes and the plus sign."""
    dashes = draw(st.sampled_from(("-- ", "--", "--  ", "--\t")))
    space = draw(st.sampled_from((" ", "  ", "\t")))
    trailing = draw(st.sampled_from(("", " ", "  ")))
    return f"{dashes}+goose{space}{draw(st.sampled_from(WORDS[word]))}{trailing}"


@st.composite
def statements(draw: st.DrawFn, *, least: int) -> list[Stmt]:
    drawn = draw(st.lists(st.sampled_from(VOCABULARY), min_size=least, max_size=4))
    out = []
    for sql in drawn:
        block = draw(st.booleans())
        out.append(Stmt(sql, block=block, semicolon=not block or draw(st.booleans())))
    return out


@st.composite
def goose_files(draw: st.DrawFn) -> tuple[Layout, str, bool]:
    no_transaction = draw(st.booleans())
    preamble = ["-- A note about this migration.", ""]
    if no_transaction:
        preamble.insert(0, draw(annotation("no")))
    spec = Layout(
        sections=[
            ("up", draw(annotation("up")), draw(statements(least=1))),
            ("down", draw(annotation("down")), draw(statements(least=0))),
        ],
        preamble=preamble,
        begin=draw(annotation("begin")),
        end=draw(annotation("end")),
        gap=draw(st.integers(0, 2)),
    )
    return spec, draw(st.sampled_from(("\n", "\r\n"))), no_transaction


@settings(max_examples=150, deadline=None)
@given(goose_files())
def test_generated_goose_files_round_trip(drawn: tuple[Layout, str, bool]) -> None:
    spec, newline, no_transaction = drawn
    written = render(spec, "-- +goose Down")

    m = read_text("goose", "20240101000000_generated.sql", written.text, newline)

    assert m.all_problems == ()
    assert sections_of(m) == (written.forward, written.down)
    assert m.rollback.line == written.marker_lines["down"]
    assert m.no_transaction is no_transaction
    assert m.rollback.no_transaction is no_transaction


NEAR_MISSES = (
    "  -- +goose Down",
    "\t-- +goose Down",
    "-- +GOOSE Down",
    "-- goose Down",
    "-- + goose Down",
    "-- +goose Down -- undo",
    "-- +goose Downgrade",
)


@settings(max_examples=100, deadline=None)
@given(goose_files(), st.sampled_from(NEAR_MISSES))
def test_a_down_marker_goose_would_not_read_refuses_the_file(
    drawn: tuple[Layout, str, bool], near_miss: str
) -> None:
    spec, newline, _ = drawn
    up, (_, _, down) = spec.sections
    spec = Layout([up, ("down", near_miss, down)], spec.preamble, spec.begin, spec.end)
    written = render(spec, "-- +goose Down")

    m = read_text("goose", "1_generated.sql", written.text, newline)

    line = written.marker_lines["down"]
    assert any(p.line == line and p.code == "format-mismatch" for p in m.problems)
    assert refusals(m, forward=True)
    assert refusals(m, forward=False)
