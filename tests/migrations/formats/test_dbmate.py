"""dbmate files read as dbmate reads them: the fixture folders, refusals with their line, and
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
from backout.migrations.formats.dbmate import options
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

HERE = FIXTURES / "dbmate"
FORMAT = get_format("dbmate")


def read(folder: str, name: str) -> MigrationFile:
    return fixture("dbmate", folder, name)


MIGRATIONS = [
    (
        "20240301100000_create_customers.sql",
        [(2, "CREATE TABLE customers")],
        [(9, "DROP TABLE customers")],
        False,
    ),
    (
        "20240301100500_create_orders.sql",
        [(5, "CREATE TABLE orders")],
        [(13, "DROP TABLE orders")],
        False,
    ),
    (
        "20240302090000_customer_total_function.sql",
        [(2, "CREATE FUNCTION customer_total(customer bigint)")],
        [(12, "DROP FUNCTION customer_total(bigint)")],
        False,
    ),
    (
        "20240303120000_index_orders_customer.sql",
        [(2, "CREATE INDEX CONCURRENTLY orders_customer")],
        [(5, "DROP INDEX CONCURRENTLY orders_customer")],
        True,
    ),
    ("20240304080000_orders_note.sql", [(2, "ALTER TABLE orders ADD COLUMN note")], [], False),
    (
        "20240305070000_customers_email.sql",
        [(2, "ALTER TABLE customers ADD COLUMN email"), (3, "UPDATE customers SET email")],
        [(7, "ALTER TABLE customers DROP COLUMN email")],
        False,
    ),
]


@pytest.mark.parametrize(("name", "forward", "down", "no_transaction"), MIGRATIONS)
def test_the_fixture_folder_reads_as_dbmate_reads_it(
    name: str, forward: list[tuple[int, str]], down: list[tuple[int, str]], no_transaction: bool
) -> None:
    m = read("migrations", name)

    assert_sections(m, forward, down, no_transaction=no_transaction, source="dbmate")


def test_files_not_starting_with_digits_are_not_migrations(tmp_path: Path) -> None:
    shutil.copytree(HERE / "migrations", tmp_path / "m")
    (tmp_path / "m/schema.sql").write_text("CREATE TABLE customers (id bigint);\n")

    catalog = discover(tmp_path, [tmp_path / "m"])

    assert [e.version for e in catalog.entries] == [
        "20240301100000",
        "20240301100500",
        "20240302090000",
        "20240303120000",
        "20240304080000",
        "20240305070000",
    ]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("transaction:false", {"transaction": "false"}),
        ("transaction:false owner:orders-team", {"transaction": "false", "owner": "orders-team"}),
        ("transaction:FALSE", {"transaction": "FALSE"}),
        ("transaction", {}),
        ("a:b:c transaction:true", {"transaction": "true"}),
    ],
)
def test_marker_options_read_as_dbmate_reads_them(written: str, expected: dict[str, str]) -> None:
    assert options(written) == expected


def test_only_transaction_false_in_lower_case_leaves_the_transaction() -> None:
    text = (
        "-- migrate:up transaction:FALSE\nSELECT 1;\n-- migrate:down transaction:false\nSELECT 2;\n"
    )
    m = read_text("dbmate", "1_x.sql", text)

    assert m.no_transaction is False
    assert m.rollback.no_transaction is True


def test_comments_before_the_up_section_and_crlf() -> None:
    assert b"\r\n" in (HERE / "migrations/20240301100500_create_orders.sql").read_bytes()

    m = read("migrations", "20240301100500_create_orders.sql")

    assert m.comments[:2] == ("Orders placed by customers.", "Reviewed in PR 214.")


def test_a_file_without_a_down_marker_documents_no_rollback() -> None:
    m = read_text("dbmate", "1_x.sql", "-- migrate:up\nCREATE TABLE t (id int);\n")

    assert not m.rollback.found
    assert m.all_problems == ()
    assert "rollback-missing" in {f.rule for f in lint_file(m)}


def test_an_empty_down_section_is_no_rollback() -> None:
    m = read("migrations", "20240304080000_orders_note.sql")

    assert m.rollback.found
    assert m.rollback.statements == ()
    assert "rollback-missing" in {f.rule for f in lint_file(m)}


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("20240101000000_marker_in_a_string.sql", "'Sections start with\n-- migrate:down\nand"),
        ("20240101000100_marker_in_a_function_body.sql", "chr(10) ||\n-- migrate:down\n"),
    ],
)
def test_markers_inside_strings_and_bodies_never_split_the_file(name: str, body: str) -> None:
    m = read("traps", name)

    assert any(body in s.sql for s in m.statements)
    assert [s.sql.split()[0] for s in m.rollback.statements] == ["DROP"]
    assert m.all_problems == ()


REFUSED = [
    ("20240101000001_capitalised_down.sql", 4, "format-mismatch", "lower case, not indented"),
    ("20240101000002_indented_down.sql", 4, "format-mismatch", "would take it for a comment"),
    ("20240101000003_space_after_colon.sql", 4, "format-mismatch", "dbmate reads `-- migrate:up`"),
    ("20240101000004_down_before_up.sql", 1, "format-mismatch", "dbmate refuses the file"),
    ("20240101000005_sql_before_up.sql", 1, "format-mismatch", "SQL before the first section"),
    ("20240101000006_no_up.sql", 3, "format-mismatch", "no `-- migrate:up` marker"),
    ("20240101000007_two_down_sections.sql", 7, "format-mismatch", "a second `-- migrate:down`"),
    ("20240101000008_goose_markers.sql", 4, "format-mismatch", "`-- +goose Down` is a goose"),
    ("20240101000009_down_does_not_parse.sql", 5, "sql-syntax", 'near "TABEL"'),
]


@pytest.mark.parametrize(("name", "line", "code", "words"), REFUSED)
def test_a_malformed_file_is_refused_with_its_line(
    name: str, line: int, code: str, words: str
) -> None:
    m = read("refused", name)

    assert any(p.line == line and p.code == code and words in p.message for p in m.all_problems)
    with pytest.raises(MalformedMigrationError, match=rf"{name}:\d+: [a-z-]+: "):
        require_runnable(m, forward=True)
    assert refusals(m, forward=False)


def test_show_json_gives_the_sections_files_and_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(HERE / "migrations", tmp_path / "db/migrations")
    (tmp_path / "backout.toml").write_text('migrations = ["db/migrations"]\n')  # detected
    monkeypatch.chdir(tmp_path)

    result = run("show", "20240301100500", "--json")

    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    path = "db/migrations/20240301100500_create_orders.sql"
    assert shown["format"] == "dbmate"
    assert shown["statements"] == [
        {
            "sql": "CREATE TABLE orders (\n"
            "    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
            "    customer_id bigint NOT NULL REFERENCES customers (id),\n"
            "    total_cents integer NOT NULL CHECK (total_cents >= 0)\n)",
            "line": 5,
        }
    ]
    assert shown["rollback"] == {
        "statements": [{"sql": "DROP TABLE orders", "line": 13}],
        "notes": ["WARNING: drops every order. Back up orders first."],
        "source": "dbmate",
    }
    assert shown["sections"] == {
        "forward": {"path": path, "lines": [5, 9]},
        "rollback": {"path": path, "lines": [13, 13]},
    }


# --- generated files --------------------------------------------------------------------------


@st.composite
def marker(draw: st.DrawFn, role: str) -> tuple[str, bool]:
    """A marker dbmate reads, and whether it says ``transaction:false``."""
    space = draw(st.sampled_from(("", " ", "  ", "\t")))
    words = draw(
        st.lists(st.sampled_from(("transaction:false", "transaction:true", "x:y")), max_size=2)
    )
    after = draw(st.sampled_from(("", " ")))
    written = f"--{space}migrate:{role}" + "".join(f" {w}" for w in words) + after
    transaction = [w for w in words if w.startswith("transaction:")]  # the last one counts
    return written, bool(transaction) and transaction[-1] == "transaction:false"


@st.composite
def dbmate_files(draw: st.DrawFn) -> tuple[Layout, str, bool, bool]:
    up, up_flag = draw(marker("up"))
    down, down_flag = draw(marker("down"))
    body = st.lists(st.sampled_from(VOCABULARY).map(Stmt), max_size=4)
    spec = Layout(
        sections=[("up", up, draw(body.filter(bool))), ("down", down, draw(body))],
        preamble=draw(st.sampled_from(((), ("-- Adds widgets.", "")))),
        gap=draw(st.integers(0, 2)),
    )
    return spec, draw(st.sampled_from(("\n", "\r\n"))), up_flag, down_flag


@settings(max_examples=150, deadline=None)
@given(dbmate_files())
def test_generated_dbmate_files_round_trip(drawn: tuple[Layout, str, bool, bool]) -> None:
    spec, newline, up_flag, down_flag = drawn
    written = render(spec, "-- migrate:down")

    m = read_text("dbmate", "20240101000000_generated.sql", written.text, newline)

    assert m.all_problems == ()
    assert sections_of(m) == (written.forward, written.down)
    assert m.no_transaction is up_flag
    assert m.rollback.no_transaction is down_flag


NEAR_MISSES = (
    "-- Migrate:down",
    "-- MIGRATE:DOWN",
    "-- migrate:Down",
    "-- migrate: down",
    "-- migrate :down",
    " -- migrate:down",
    "\t-- migrate:down",
)


@settings(max_examples=100, deadline=None)
@given(dbmate_files(), st.sampled_from(NEAR_MISSES))
def test_a_down_marker_dbmate_would_not_read_refuses_the_file(
    drawn: tuple[Layout, str, bool, bool], near_miss: str
) -> None:
    spec, newline, _, _ = drawn
    up, (_, _, down) = spec.sections
    written = render(Layout([up, ("down", near_miss, down)], spec.preamble), "-- migrate:down")

    m = read_text("dbmate", "20240101000000_generated.sql", written.text, newline)

    line = written.marker_lines["down"]
    assert any(p.line == line and p.code == "format-mismatch" for p in m.problems)
    assert refusals(m, forward=True)
    assert refusals(m, forward=False)
