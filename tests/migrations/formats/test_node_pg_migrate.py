"""node-pg-migrate SQL files read as node-pg-migrate reads them (but never split inside a
string or a ``$$`` body, its known trap): the fixture folders, refusals with their line, and
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
from backout.migrations.lint import lint_file, refusals, require_runnable
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

HERE = FIXTURES / "node-pg-migrate"
FORMAT = get_format("node-pg-migrate")


def read(folder: str, name: str) -> MigrationFile:
    return fixture("node-pg-migrate", folder, name)


MIGRATIONS = [
    ("1715000000000_create-users.sql", [(2, "CREATE TABLE users")], [(9, "DROP TABLE users")]),
    ("1715000100000_create-posts.sql", [(2, "CREATE TABLE posts")], [(10, "DROP TABLE posts")]),
    (
        "1715000200000_post-count-function.sql",
        [(2, "CREATE FUNCTION post_count(author int)")],
        [(9, "DROP FUNCTION post_count(int)")],
    ),
    (
        "1715000300000_seed-admin.sql",
        [(1, "INSERT INTO users (handle)"), (2, "INSERT INTO posts (user_id, title)")],
        [],
    ),
    (
        "20240601120000000_users-email.sql",
        [(6, "ALTER TABLE users ADD COLUMN email"), (7, "UPDATE users SET email")],
        [(3, "ALTER TABLE users DROP COLUMN email")],
    ),
]


@pytest.mark.parametrize(("name", "forward", "down"), MIGRATIONS)
def test_the_fixture_folder_reads_as_node_pg_migrate_reads_it(
    name: str, forward: list[tuple[int, str]], down: list[tuple[int, str]]
) -> None:
    assert_sections(read("migrations", name), forward, down)


def test_timestamps_sort_by_number() -> None:
    catalog = discover(HERE, [HERE / "migrations"])

    assert [e.version for e in catalog.entries] == [
        "1715000000000",
        "1715000100000",
        "1715000200000",
        "1715000300000",
        "20240601120000000",
    ]


def test_a_file_without_markers_is_all_up_and_documents_no_rollback() -> None:
    assert b"\r\n" in (HERE / "migrations/1715000300000_seed-admin.sql").read_bytes()

    m = read("migrations", "1715000300000_seed-admin.sql")

    assert not m.rollback.found
    assert "rollback-missing" in {f.rule for f in lint_file(m)}


def test_markers_in_any_case_with_dashes_indents_and_remarks() -> None:
    posts = read("migrations", "1715000100000_create-posts.sql")
    email = read("migrations", "20240601120000000_users-email.sql")

    assert posts.rollback.text.startswith("---- down migration (drops posts)\n")
    assert email.rollback.line == 1
    assert email.rollback.notes == ("WARNING: drops users.email. Back up users (id, email) first.",)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("1715000000000_marker-in-a-string.sql", "'A migration file has two parts:\n-- Down"),
        ("1715000000100_marker-in-a-function-body.sql", "chr(10) ||\n-- Down Migration\n"),
    ],
)
def test_markers_inside_strings_and_bodies_never_split_the_file(name: str, body: str) -> None:
    m = read("traps", name)

    assert any(body in s.sql for s in m.statements)
    assert [s.sql.split()[0] for s in m.rollback.statements] == ["DROP"]
    assert m.rollback.line in (7, 10)
    assert m.all_problems == ()


REFUSED = [
    ("1715000000001_hyphenated-down.sql", 4, "format-mismatch", "(space between)"),
    ("1715000000002_down-without-up.sql", 3, "format-mismatch", "this down section included"),
    ("1715000000003_two-down-sections.sql", 7, "format-mismatch", "a second `-- Down Migration`"),
    ("1715000000004_sql-before-up.sql", 1, "format-mismatch", "SQL before the first section"),
    ("1715000000005_dbmate-markers.sql", 4, "format-mismatch", "`-- migrate:down` is a dbmate"),
    ("create-t.sql", 1, "name-format", "node-pg-migrate needs `<version>_<name>.sql`"),
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
    shutil.copytree(HERE / "traps", tmp_path / "migrations")
    (tmp_path / "backout.toml").write_text('format = "node-pg-migrate"\n')
    monkeypatch.chdir(tmp_path)

    result = run("show", "1715000000100", "--json")

    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    path = "migrations/1715000000100_marker-in-a-function-body.sql"
    assert shown["format"] == "node-pg-migrate"
    assert shown["statements"] == [
        {
            "sql": "CREATE FUNCTION docs_template() RETURNS text AS $$\nBEGIN\n"
            "    RETURN '-- Up Migration' || chr(10) ||\n-- Down Migration\n"
            "        'DROP TABLE x;';\nEND;\n$$ LANGUAGE plpgsql",
            "line": 2,
        }
    ]
    assert shown["rollback"]["statements"] == [{"sql": "DROP FUNCTION docs_template()", "line": 11}]
    assert shown["sections"] == {
        "forward": {"path": path, "lines": [2, 8]},
        "rollback": {"path": path, "lines": [11, 11]},
    }


# --- generated files --------------------------------------------------------------------------


@st.composite
def marker(draw: st.DrawFn, word: str) -> str:
    """A marker node-pg-migrate reads: indent, dashes, any case, any remark after it."""
    indent = draw(st.sampled_from(("", " ", "  ", "\t")))
    dashes = draw(st.sampled_from(("-- ", "--", "---- ", "-- - ", "--\t")))
    spelled = "".join(c.upper() if draw(st.booleans()) else c for c in word)
    space = draw(st.sampled_from((" ", "  ", "\t")))
    migration = draw(st.sampled_from(("Migration", "migration", "MIGRATION", "Migrations")))
    remark = draw(st.sampled_from(("", " ", " (see the ticket)", ": widgets")))
    return f"{indent}{dashes}{spelled}{space}{migration}{remark}"


@st.composite
def node_files(draw: st.DrawFn) -> tuple[Layout, str]:
    body = st.lists(st.sampled_from(VOCABULARY).map(Stmt), max_size=4)
    sections = [
        ("up", draw(marker("up")), draw(body.filter(bool))),
        ("down", draw(marker("down")), draw(body)),
    ]
    if draw(st.booleans()):
        sections.reverse()
    spec = Layout(sections=sections, gap=draw(st.integers(0, 2)))
    return spec, draw(st.sampled_from(("\n", "\r\n")))


@settings(max_examples=150, deadline=None)
@given(node_files())
def test_generated_node_pg_migrate_files_round_trip(drawn: tuple[Layout, str]) -> None:
    spec, newline = drawn
    written = render(spec, "-- Down Migration")

    m = read_text("node-pg-migrate", "1715000000000_generated.sql", written.text, newline)

    assert m.all_problems == ()
    assert sections_of(m) == (written.forward, written.down)
    assert m.rollback.line == written.marker_lines["down"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=4))
def test_a_generated_file_without_markers_is_all_up(sqls: list[str]) -> None:
    written = render(Layout([("up", "-- widgets", [Stmt(s) for s in sqls])]), "-- Down Migration")

    m = read_text("node-pg-migrate", "1715000000000_generated.sql", written.text)

    assert m.all_problems == ()
    assert sections_of(m) == (written.forward, [])
    assert not m.rollback.found


NEAR_MISSES = ("-- Down-Migration", "-- DownMigration", "-- down_migration", "--- DOWN-MIGRATIONS")


@settings(max_examples=100, deadline=None)
@given(node_files(), st.sampled_from(NEAR_MISSES))
def test_a_down_marker_node_pg_migrate_would_not_read_refuses_the_file(
    drawn: tuple[Layout, str], near_miss: str
) -> None:
    spec, newline = drawn
    sections = [
        (role, near_miss if role == "down" else line, body) for role, line, body in spec.sections
    ]
    written = render(Layout(sections), "-- Down Migration")

    m = read_text("node-pg-migrate", "1715000000000_generated.sql", written.text, newline)

    line = written.marker_lines["down"]
    assert any(p.line == line and p.code == "format-mismatch" for p in m.problems)
    assert refusals(m, forward=True)
    assert refusals(m, forward=False)
