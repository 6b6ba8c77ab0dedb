"""golang-migrate folders: ``N_title.up.sql`` and ``N_title.down.sql`` read as ONE migration, the
down file its rollback; every other file of the folder reported, never run."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backout.migrations.catalog import Catalog, discover
from backout.migrations.file import MigrationFile
from backout.migrations.formats import detect
from backout.migrations.formats.pairs import Stray
from backout.migrations.lint import lint_entries
from backout.migrations.statements import Flag
from tests.helpers import write_tree
from tests.migrations.formats.paired_sql import SqlFile, sql_files, written
from tests.runner import run

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "formats" / "golang-migrate"
BASIC, TIMESTAMPS, STRAYS = FIXTURES / "basic", FIXTURES / "timestamps", FIXTURES / "strays"


def catalog(folder: Path) -> Catalog:
    return discover(folder, (folder,))


def read(folder: Path) -> dict[str, MigrationFile]:
    return {e.name: e.read() for e in catalog(folder).entries}


def forward(m: MigrationFile) -> list[tuple[str, int]]:
    return [(s.sql, s.line) for s in m.statements]


def down(m: MigrationFile) -> list[tuple[str, int]]:
    return [(s.sql, s.line) for s in m.rollback.statements]


def findings(folder: Path) -> list[tuple[str, str, int, str]]:
    """``(file, rule, line, message)`` of every lint finding in ``folder``."""
    report = lint_entries(catalog(folder).entries)
    return [(f.file.name, f.rule, f.line, f.message) for f in report.findings]


@pytest.mark.parametrize("folder", [BASIC, TIMESTAMPS, STRAYS], ids=lambda p: p.name)
def test_every_fixture_folder_is_detected_as_golang_migrate(folder: Path) -> None:
    assert detect(folder) == "golang-migrate"


def test_a_strategy_folder_with_down_siblings_and_rollback_files_stays_strategy(
    tmp_path: Path,
) -> None:
    write_tree(
        tmp_path,
        {
            "001_create_jobs.sql": "CREATE TABLE jobs (id int);\n",
            "001_create_jobs.rollback.sql": "DROP TABLE jobs;\n",
            "002_add_kind.sql": "ALTER TABLE jobs ADD COLUMN kind text;\n",
            "002_add_kind.down.sql": "ALTER TABLE jobs DROP COLUMN kind;\n",
        },
    )

    assert detect(tmp_path) == "strategy"
    jobs = catalog(tmp_path).resolve("001", tmp_path).read()
    assert (jobs.format, down(jobs)) == ("strategy", [("DROP TABLE jobs", 1)])
    assert jobs.rollback.path == tmp_path / "001_create_jobs.rollback.sql"


def test_each_pair_is_one_migration_in_version_order() -> None:
    entries = catalog(BASIC).entries

    assert [(e.name, e.version, e.path.name, [o.name for o in e.others]) for e in entries] == [
        (f"00000{n}_{t}", f"00000{n}", f"00000{n}_{t}.up.sql", [f"00000{n}_{t}.down.sql"])
        for n, t in enumerate(
            ("create_users", "create_orders", "add_orders_status_index", "orders_audit"), 1
        )
    ] + [("000005_seed_users", "000005", "000005_seed_users.up.sql",
          ["000005_seed_users.down.sql"])]  # fmt: skip
    assert {e.format for e in entries} == {"golang-migrate"}


def test_the_up_file_is_the_forward_section_and_the_down_file_the_rollback() -> None:
    users = read(BASIC)["000001_create_users"]

    assert forward(users) == [
        (
            "CREATE TABLE users (\n    id         bigserial PRIMARY KEY,\n    email      text "
            "NOT NULL,\n    created_at timestamptz NOT NULL DEFAULT now()\n)",
            1,
        ),
        ("CREATE UNIQUE INDEX users_email_key ON users (lower(email))", 7),
    ]
    assert down(users) == [("DROP TABLE IF EXISTS users", 2)]
    assert users.rollback.source == "golang-migrate"
    assert users.rollback.path == BASIC / "000001_create_users.down.sql"
    assert users.rollback.notes == ("WARNING: drops every user; back up the users table first.",)
    assert users.rollback.text == (BASIC / "000001_create_users.down.sql").read_text()
    assert (users.problems, users.rollback.problems) == ((), ())
    assert not users.no_transaction
    assert not users.rollback.no_transaction


def test_a_begin_commit_around_either_file_is_taken_off_and_not_sent() -> None:
    orders = read(BASIC)["000002_create_orders"]

    assert [s.line for s in orders.statements] == [3, 10]
    assert orders.wrapper is not None
    assert orders.wrapper.lines == (1, 12)
    assert down(orders) == [("DROP TABLE IF EXISTS orders", 3)]
    assert orders.rollback.wrapper is not None
    assert orders.rollback.wrapper.lines == (1, 4)
    assert orders.all_problems == ()


def test_concurrent_index_statements_are_flagged_in_both_files_and_no_file_flag_is_set() -> None:
    index = read(BASIC)["000003_add_orders_status_index"]

    assert [s.has(Flag.NON_TRANSACTIONAL) for s in index.statements] == [True]
    assert [s.has(Flag.NON_TRANSACTIONAL) for s in index.rollback.statements] == [True]
    assert not index.no_transaction
    assert not index.rollback.no_transaction


def test_markers_inside_a_dollar_body_or_a_string_never_split_or_refuse_the_file() -> None:
    audit = read(BASIC)["000004_orders_audit"]

    assert [s.line for s in audit.statements] == [3, 11, 22, 27]
    assert "-- +goose Down\n-- migrate:down" in audit.statements[1].sql
    assert audit.statements[2].sql.startswith("COMMENT ON TABLE order_events IS '\n-- +goose")
    assert [s.line for s in audit.rollback.statements] == [1, 2, 4]
    assert audit.all_problems == ()


def test_windows_line_ends_are_read_and_lines_kept() -> None:
    seed = read(BASIC)["000005_seed_users"]

    assert forward(seed) == [
        (
            "INSERT INTO users (email) VALUES\n    ('ada@example.com'),\n    ('grace@example.com')",
            1,
        )
    ]
    assert down(seed) == [
        ("DELETE FROM users\nWHERE email IN ('ada@example.com', 'grace@example.com')", 3)
    ]
    assert seed.rollback.notes == (
        "Removes the seeded users only. WARNING: deletes the two seeded users; back them up if "
        "they were edited.",
    )


def test_the_basic_folder_lints_with_warnings_only() -> None:
    assert [f[:3] for f in findings(BASIC)] == [
        ("000003_add_orders_status_index.down.sql", "non-transactional", 1),
        ("000003_add_orders_status_index.up.sql", "non-transactional", 1),
    ]


def test_timestamp_versions_titles_that_differ_and_a_missing_semicolon() -> None:
    read_ = read(TIMESTAMPS)

    accounts = read_["20240102150405_create_accounts"]
    assert [s.line for s in accounts.statements] == [2, 3]
    assert accounts.statements[1].sql.endswith("max_seats int NOT NULL DEFAULT 5)")
    renamed = read_["20240215083000_rename_invoice_amount"]
    back = "20240215083000_rename_invoice_amount_back.down.sql"
    assert renamed.rollback.path == TIMESTAMPS / back
    assert down(renamed) == [("ALTER TABLE invoices RENAME COLUMN amount_minor TO amount_cents", 1)]


def test_lint_says_which_down_file_is_missing_or_empty_in_the_formats_words() -> None:
    found = findings(TIMESTAMPS)

    assert [f[:3] for f in found] == [
        ("20240102150405_create_accounts.down.sql", "rollback-data-loss", 1),
        ("20240102150405_create_accounts.down.sql", "rollback-data-loss", 2),  # remark after ;
        ("20240103090000_add_accounts_plan.up.sql", "rollback-missing", 1),
        ("20240110121500_backfill_account_names.up.sql", "forward-data-loss", 1),
        ("20240201000000_create_invoices.up.sql", "rollback-missing", 1),
        ("20240215083000_rename_invoice_amount.up.sql", "rename", 1),  # a lock-safety warning
        ("20240215083000_rename_invoice_amount_back.down.sql", "rename", 1),
        ("20240301101010_vacuum_invoices.up.sql", "forward-empty", 1),
    ]  # the irreversible backfill's comment-only down file is no finding
    assert found[2][3] == (
        "20240103090000_add_accounts_plan.down.sql holds no SQL statement: write the SQL that "
        "undoes this migration in it (plain SQL, not commented out), or a comment saying why "
        "it is irreversible"
    )
    assert found[4][3] == (
        "no 20240201000000_create_invoices.down.sql beside 20240201000000_create_invoices.up.sql"
        ": write the SQL that undoes this migration there (golang-migrate's down file)"
    )


def test_files_that_are_no_migration_are_strays_reported_alone_with_the_reason() -> None:
    entries = catalog(STRAYS).entries
    strays = {e.path.name: e for e in entries if isinstance(e, Stray)}

    assert sorted(strays) == [
        "1_drop_tags.down.sql",
        "2_create_labels.down.sql",
        "3_add_tag_color.UP.sql",
        "seed.sql",
    ]
    assert all(e.version is None for e in strays.values())
    by_file = {(f[0], f[1]): f[3] for f in findings(STRAYS)}
    assert by_file[("1_drop_tags.down.sql", "name-format")].startswith(
        "1_drop_tags.down.sql is a second down file for version 1: golang-migrate refuses"
    )
    assert by_file[("2_create_labels.down.sql", "name-format")] == (
        "2_create_labels.down.sql has no up file (2_create_labels.up.sql): a down file without "
        "its migration; restore the up file or delete this one"
    )
    assert "`up` and `down` in lower case" in by_file[("3_add_tag_color.UP.sql", "name-format")]
    assert [f for f in findings(STRAYS) if f[0] == "seed.sql"] == [
        ("seed.sql", "name-format", 1, by_file[("seed.sql", "name-format")])
    ]


def test_other_tools_markers_in_either_file_psql_and_transaction_control_are_problems() -> None:
    found = {(f[0], f[1], f[2]) for f in findings(STRAYS)}

    assert {
        ("4_mixed_tools.up.sql", "format-mismatch", 1),
        ("4_mixed_tools.up.sql", "format-mismatch", 4),
        ("4_mixed_tools.down.sql", "format-mismatch", 1),
        ("5_psql_script.up.sql", "psql-meta-command", 1),
        ("5_psql_script.down.sql", "transaction-control", 2),
        ("6_bad_sql.up.sql", "sql-syntax", 1),
    } <= found
    tags = read(STRAYS)["1_create_tags"]
    assert down(tags) == [("DROP TABLE tags", 1)]


def test_resolve_finds_a_pair_by_version_name_up_file_down_file_and_file_name() -> None:
    cat = catalog(BASIC)

    for reference in (
        "3",
        "000003",
        "000003_add_orders_status_index",
        "add_orders_status_index",
        str(BASIC / "000003_add_orders_status_index.up.sql"),
        str(BASIC / "000003_add_orders_status_index.down.sql"),
        "000003_add_orders_status_index.down.sql",
    ):
        assert cat.resolve(reference, BASIC).name == "000003_add_orders_status_index", reference


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(BASIC, tmp_path / "db" / "migrations")
    (tmp_path / "backout.toml").write_text(
        'migrations = ["db/migrations"]\nformat = "golang-migrate"\n'
    )
    monkeypatch.chdir(tmp_path)
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_show_json_gives_the_format_both_files_and_the_lines_of_each_section(
    project: Path,
) -> None:
    result = run("show", "000004", "--json")

    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["format"] == "golang-migrate"
    assert shown["path"] == "db/migrations/000004_orders_audit.up.sql"
    assert shown["rollback_path"] == "db/migrations/000004_orders_audit.down.sql"
    assert shown["sections"] == {
        "forward": {"path": "db/migrations/000004_orders_audit.up.sql", "lines": [3, 29]},
        "rollback": {"path": "db/migrations/000004_orders_audit.down.sql", "lines": [1, 4]},
    }
    assert [s["line"] for s in shown["statements"]] == [3, 11, 22, 27]
    assert [s["sql"] for s in shown["rollback"]["statements"]] == [
        "DROP TRIGGER IF EXISTS orders_status_changed ON orders",
        "DROP FUNCTION IF EXISTS record_order_event()",
        "DROP TABLE IF EXISTS order_events",
    ]
    assert shown["rollback"]["source"] == "golang-migrate"
    assert shown["problems"] == []


def test_lint_on_the_command_line_passes_on_the_basic_folder(project: Path) -> None:
    result = run("lint")

    assert result.exit_code == 0, result.stdout + result.stderr


# Property: any file generated in the format reads back to exactly its statements and lines.

titles = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
versions = st.one_of(
    st.integers(1, 999).map(lambda n: f"{n:06d}"),
    st.integers(1, 10**6).map(str),
    st.integers(20200101000000, 20301231235959).map(str),
)


@given(
    st.lists(
        st.tuples(versions, titles, sql_files(min_size=1), st.none() | sql_files()),
        min_size=1,
        max_size=4,
        unique_by=lambda m: int(m[0]),
    )
)
@settings(max_examples=60, deadline=None)
def test_generated_pairs_read_back_exactly(
    migrations: list[tuple[str, str, SqlFile, SqlFile | None]],
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        for version, title, up, down_file in migrations:
            written(str(folder / f"{version}_{title}.up.sql"), up.text)
            if down_file is not None:
                written(str(folder / f"{version}_{title}.down.sql"), down_file.text)

        assert detect(folder) == "golang-migrate"
        read_back = read(folder)
        for version, title, up, down_file in migrations:
            m = read_back[f"{version}_{title}"]
            assert tuple(forward(m)) == up.statements
            if down_file is None:
                assert not m.rollback.found
                assert [p.code for p in m.problems if p.code == "rollback-missing"] == [
                    "rollback-missing"
                ]
            else:
                assert tuple(down(m)) == down_file.statements
            assert not any(p.code == "format-mismatch" for p in m.all_problems)
