"""The reading the four comment-marked formats share (goose, sql-migrate, dbmate,
node-pg-migrate): markers on comment lines only, sections, blocks, the model, detection.

The generator at the top (:func:`render`) writes a marked file from section markers and
statements and says where each statement is; the formats' property tests use it.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from backout.errors import MalformedMigrationError
from backout.migrations.entry import Entry
from backout.migrations.file import MigrationFile
from backout.migrations.formats import detect, get_format
from backout.migrations.formats.goose import GRAMMAR as GOOSE
from backout.migrations.formats.sections import (
    Chunk,
    MarkedFormat,
    Role,
    chunks,
    detected,
    file_markers,
    layout,
    parse,
    scan,
    terminated,
)
from tests.samples import SAMPLES

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "formats"
TOOLS = ("goose", "sql-migrate", "dbmate", "node-pg-migrate")

# --- a generator of marked files, for the formats' property tests ------------------------------

VOCABULARY = (
    "CREATE TABLE widgets (id int PRIMARY KEY)",
    "ALTER TABLE widgets ADD COLUMN label text",
    "INSERT INTO widgets (id) VALUES (1)",
    "COMMENT ON TABLE widgets IS 'a; b'",
    "CREATE INDEX widgets_label ON widgets (label)",
    "CREATE FUNCTION widget_count() RETURNS bigint AS $$\nBEGIN\n"
    "    RETURN (SELECT count(*) FROM widgets);\nEND;\n$$ LANGUAGE plpgsql",
    "DROP TABLE IF EXISTS widgets",
    "UPDATE widgets SET label = 'first line\n{marker}\nlast line'",
    "CREATE FUNCTION widget_note() RETURNS text AS $body$\nSELECT 'x'\n{marker}\n$body$ "
    "LANGUAGE sql",
)
"""Statements the generated files hold; ``{marker}`` becomes a down marker *inside* a string or
a ``$$`` body, which must never split the file."""


@dataclass(frozen=True)
class Stmt:
    sql: str
    block: bool = False
    """Inside ``StatementBegin``/``StatementEnd``."""
    semicolon: bool = True


@dataclass(frozen=True)
class Written:
    text: str
    forward: list[tuple[str, int]]
    down: list[tuple[str, int]]
    marker_lines: dict[str, int]


@dataclass(frozen=True)
class Layout:
    """What to write: section markers (as written) and their statements, in file order."""

    sections: Sequence[tuple[str, str, Sequence[Stmt]]]
    """``(role, marker line, statements)``; role is ``up`` or ``down``."""
    preamble: Sequence[str] = ()
    begin: str = ""
    end: str = ""
    gap: int = 1
    """Blank lines between statements."""


def render(spec: Layout, down_marker: str) -> Written:
    """The file ``spec`` describes, and the line of every statement and marker."""
    lines: list[str] = list(spec.preamble)
    found: dict[str, list[tuple[str, int]]] = {"up": [], "down": []}
    markers: dict[str, int] = {}
    for role, marker, statements in spec.sections:
        lines.append(marker)
        markers[role] = len(lines)
        for stmt in statements:
            lines += [""] * spec.gap
            sql = stmt.sql.replace("{marker}", down_marker)
            if stmt.block:
                lines.append(spec.begin)
            found[role].append((sql, len(lines) + 1))
            body = sql.split("\n")
            body[-1] += ";" if stmt.semicolon else ""
            lines += body
            if stmt.block:
                lines.append(spec.end)
        lines += [""] * spec.gap
    return Written("\n".join(lines) + "\n", found["up"], found["down"], markers)


def read_text(tool: str, name: str, text: str, newline: str = "\n") -> MigrationFile:
    """``text`` read as the file ``name`` of a ``tool`` folder (pure: no file is written)."""
    fmt = get_format(tool)
    assert isinstance(fmt, MarkedFormat)
    folder = Path("/project/db/migrations")
    entry = Entry(folder / name, folder, name.removesuffix(".sql"), fmt.version_of(name), tool)
    data = text.replace("\n", newline).encode()
    return parse(entry, data, fmt.grammar, fmt.name_problems(entry))


def sections_of(m: MigrationFile) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    return (
        [(s.sql, s.line) for s in m.statements],
        [(s.sql, s.line) for s in m.rollback.statements],
    )


def starts(statements: list[tuple[str, int]], expected: list[tuple[int, str]]) -> bool:
    """Each statement at its expected line, starting as expected, without its ``;``."""
    return len(statements) == len(expected) and all(
        line == want_line and sql.startswith(want) and not sql.endswith(";")
        for (sql, line), (want_line, want) in zip(statements, expected, strict=True)
    )


def assert_sections(
    m: MigrationFile,
    forward: list[tuple[int, str]],
    down: list[tuple[int, str]],
    *,
    no_transaction: bool = False,
    source: str | None = None,
) -> None:
    """``m`` holds exactly the expected up and down statements, runs as its format says, has
    no problem, and (given ``source``) says which reader found its rollback."""
    up_sql, down_sql = sections_of(m)
    assert starts(up_sql, forward), up_sql
    assert starts(down_sql, down), down_sql
    assert m.no_transaction is no_transaction
    assert m.all_problems == ()
    if source is not None:
        assert m.rollback.no_transaction is no_transaction
        assert m.rollback.source == source


def fixture(tool: str, folder: str, name: str) -> MigrationFile:
    """The migration ``name`` of the fixture folder ``<tool>/<folder>``, read as ``tool``."""
    entries = get_format(tool).entries(FIXTURES / tool / folder)
    (entry,) = (e for e in entries if e.path.name == name)
    return entry.read()


# --- markers on comment lines only --------------------------------------------------------------


def test_markers_are_taken_from_comment_lines_only() -> None:
    text = (
        "-- +goose Up\n"
        "SELECT 'a\n"
        "-- +goose Down\n"
        "b';\n"
        "/*\n"
        "-- +goose Down\n"
        "*/\n"
        "CREATE FUNCTION f() RETURNS int AS $$\n"
        "-- +goose Down\n"
        "SELECT 1 $$ LANGUAGE sql;\n"
        "-- +goose Down\n"
        "SELECT 2;\n"
    )
    found = scan(text, get_format("goose").grammar)  # type: ignore[attr-defined]

    assert [(m.role, m.line) for m in found.markers] == [(Role.UP, 1), (Role.DOWN, 11)]
    assert found.problems == ()


def test_a_section_runs_to_the_next_section_marker_or_the_end() -> None:
    text = "-- a note\n\n-- +goose Up\nSELECT 1;\n\n-- +goose Down\nSELECT 2;\n"
    grammar = GOOSE
    plan = layout(scan(text, grammar), grammar)

    assert plan.up is not None
    assert plan.down is not None
    assert (plan.up.start, plan.up.first, plan.up.last) == (3, 4, 5)
    assert (plan.down.start, plan.down.first, plan.down.last) == (6, 7, 8)
    assert plan.preamble == 2
    assert plan.problems == ()


def test_statement_blocks_cut_a_section_into_chunks() -> None:
    text = (
        "-- +goose Up\n"
        "SELECT 1;\n"
        "-- +goose StatementBegin\n"
        "SELECT 2; SELECT 3\n"
        "-- +goose StatementEnd\n"
        "SELECT 4;\n"
    )
    grammar = GOOSE
    found = scan(text, grammar)
    plan = layout(found, grammar)
    assert plan.up is not None

    pieces, problems = chunks(found, plan.up, grammar)

    assert pieces == [Chunk(2, 2, False), Chunk(4, 4, True), Chunk(6, 7, False)]
    assert problems == []
    m = read_text("goose", "1_x.sql", text)
    assert sections_of(m)[0] == [("SELECT 1", 2), ("SELECT 2", 4), ("SELECT 3", 4), ("SELECT 4", 6)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SELECT 1;", True),
        ("SELECT 1; -- done\n", True),
        ("SELECT 1 /* ; */", False),
        ("SELECT 1\n-- ;\n", False),
        ("", True),
        ("-- only a comment", True),
        ("SELECT ';'", False),
    ],
)
def test_terminated_looks_at_the_last_token(text: str, expected: bool) -> None:
    assert terminated(text) is expected


# --- the model --------------------------------------------------------------------------------


def test_the_down_section_is_kept_exactly_as_written_and_checksummed_alone() -> None:
    text = (
        "-- +goose Up\nCREATE TABLE t (id int);\n\n"
        "-- +goose Down\n-- WARNING: drops t.\nDROP TABLE t;\n"
    )
    m = read_text("goose", "1_t.sql", text)

    assert m.rollback.text == "-- +goose Down\n-- WARNING: drops t.\nDROP TABLE t;\n"
    assert m.rollback.source == "goose"
    assert m.rollback.line == 4
    assert m.rollback.checksum == hashlib.sha256(m.rollback.text.encode()).hexdigest()
    assert m.checksum == hashlib.sha256(text.encode()).hexdigest()
    edited = read_text("goose", "1_t.sql", text.replace("id int", "id bigint"))
    assert edited.checksum != m.checksum
    assert edited.rollback.checksum == m.rollback.checksum


def test_crlf_files_read_like_lf_files() -> None:
    text = "-- +migrate Up\nCREATE TABLE t (id int);\n-- +migrate Down\nDROP TABLE t;\n"
    lf, crlf = (
        read_text("sql-migrate", "1_t.sql", text),
        read_text("sql-migrate", "1_t.sql", text, "\r\n"),
    )

    assert (
        sections_of(crlf)
        == sections_of(lf)
        == ([("CREATE TABLE t (id int)", 2)], [("DROP TABLE t", 4)])
    )
    assert crlf.all_problems == ()


def test_comments_before_the_first_section_are_notes_and_a_header() -> None:
    text = "-- Migration: accounts\n-- Owner: platform\n\n-- +goose Up\nSELECT 1;\n"
    m = read_text("goose", "1_t.sql", text)

    assert m.header == {"Migration": "accounts", "Owner": "platform"}
    assert m.comments == ("Migration: accounts", "Owner: platform")
    assert m.rollback.found is False


def test_down_comments_apart_in_the_file_make_separate_notes() -> None:
    text = (
        "-- migrate:up\nCREATE TABLE t (id int);\n-- migrate:down\n"
        "-- WARNING: drops t.\n-- Back up t first.\nDROP TABLE t;\n-- Then tell the team.\n"
    )
    m = read_text("dbmate", "1_t.sql", text)

    assert m.rollback.notes == ("WARNING: drops t. Back up t first.", "Then tell the team.")


def test_a_transaction_wrapper_around_a_section_is_taken_off() -> None:
    text = (
        "-- migrate:up\nBEGIN;\nCREATE TABLE t (id int);\nCOMMIT;\n-- migrate:down\nDROP TABLE t;\n"
    )
    m = read_text("dbmate", "1_t.sql", text)

    assert sections_of(m)[0] == [("CREATE TABLE t (id int)", 3)]
    assert m.wrapper is not None
    assert m.wrapper.lines == (2, 4)
    assert m.all_problems == ()


def test_transaction_control_inside_a_down_section_is_a_problem_of_the_rollback() -> None:
    text = "-- migrate:up\nCREATE TABLE t (id int);\n-- migrate:down\nDROP TABLE t;\nCOMMIT;\n"
    m = read_text("dbmate", "1_t.sql", text)

    assert [(p.code, p.line) for p in m.rollback.problems] == [("transaction-control", 5)]
    assert m.problems == ()


def test_psql_meta_commands_are_problems_of_their_section() -> None:
    text = "-- Up Migration\n\\set ON_ERROR_STOP on\nSELECT 1;\n-- Down Migration\n\\i undo.sql\n"
    m = read_text("node-pg-migrate", "1715000000000_t.sql", text)

    assert [(p.code, p.line) for p in m.problems] == [("psql-meta-command", 2)]
    assert [(p.code, p.line) for p in m.rollback.problems] == [("psql-meta-command", 5)]


def test_a_file_that_is_not_utf8_is_refused_naming_its_line(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    (folder / "1_t.sql").write_bytes(b"-- +goose Up\nSELECT '\xff';\n")
    fmt = get_format("goose")
    (entry,) = fmt.entries(folder)

    with pytest.raises(MalformedMigrationError, match=r"1_t.sql:2: is not UTF-8"):
        fmt.read(entry)


def test_a_file_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    entry = Entry(tmp_path / "1_gone.sql", tmp_path, "1_gone", "1", "dbmate")

    with pytest.raises(MalformedMigrationError, match=r"1_gone.sql: cannot be read"):
        get_format("dbmate").read(entry)


# --- detection --------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", TOOLS)
def test_each_fixture_folder_is_detected_as_its_tool(tool: str) -> None:
    for folder in ("migrations", "traps", "refused"):
        assert detect(FIXTURES / tool / folder) == tool


def test_a_strategy_folder_is_detected_as_strategy() -> None:
    assert detect(SAMPLES) == "strategy"
    assert detected(SAMPLES, sorted(p.name for p in SAMPLES.iterdir())) is None


def test_one_marked_file_among_many_plain_ones_does_not_make_the_folder_that_tool(
    tmp_path: Path,
) -> None:
    shutil.copytree(SAMPLES, tmp_path / "m")
    shutil.copy(FIXTURES / "goose/migrations/00001_create_accounts.sql", tmp_path / "m/007_a.sql")

    assert detect(tmp_path / "m") == "strategy"


def test_detection_sees_a_file_change(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "1_a.sql").write_text("-- +goose Up\nSELECT 1;\n")
    assert detect(folder) == "goose"

    (folder / "1_a.sql").write_text("-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n")

    assert detect(folder) == "dbmate"
    assert file_markers(folder, ["1_a.sql"]) == {"1_a.sql": frozenset({"dbmate"})}


def test_markers_in_a_string_do_not_count_for_detection(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "001_a.sql").write_text("SELECT '\n-- +goose Up\n';\n")

    assert detect(folder) == "strategy"


def test_node_pg_migrate_files_without_markers_count_for_it_by_their_names(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "1715000000000_a.sql").write_text("-- Up Migration\nSELECT 1;\n")
    for name in ("1715000000001_b.sql", "20240101000000000_c.sql"):
        (folder / name).write_text("SELECT 1;\n")
    (folder / "README.md").write_text("not SQL")

    assert detect(folder) == "node-pg-migrate"
