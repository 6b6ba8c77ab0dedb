"""Directory folders (diesel and others): ``<version>_<name>/up.sql`` and ``down.sql``, one
migration per directory; ``metadata.toml``'s ``run_in_transaction = false`` honoured."""

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
from backout.migrations.formats.directory import version_of
from backout.migrations.formats.pairs import Stray
from backout.migrations.lint import lint_entries
from tests.migrations.formats.paired_sql import SqlFile, sql_files, written
from tests.runner import run

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "formats" / "directory"
DIESEL, DIGITS, STRAYS = FIXTURES / "diesel", FIXTURES / "digits", FIXTURES / "strays"
USERS, EMAIL = "2024-01-15-093000_create_users", "2024-01-16-101500_add_users_email_index"
POSTS = "2024-02-01-120000_create_posts"


def catalog(folder: Path) -> Catalog:
    return discover(folder, (folder,))


def read(folder: Path) -> dict[str, MigrationFile]:
    return {e.name: e.read() for e in catalog(folder).entries}


def forward(m: MigrationFile) -> list[tuple[str, int]]:
    return [(s.sql, s.line) for s in m.statements]


def down(m: MigrationFile) -> list[tuple[str, int]]:
    return [(s.sql, s.line) for s in m.rollback.statements]


def findings(folder: Path) -> list[tuple[str, str, int, str]]:
    report = lint_entries(catalog(folder).entries)
    return [(str(f.file.relative_to(folder)), f.rule, f.line, f.message) for f in report.findings]


@pytest.mark.parametrize("folder", [DIESEL, DIGITS, STRAYS], ids=lambda p: p.name)
def test_every_fixture_folder_is_detected_as_directory(folder: Path) -> None:
    assert detect(folder) == "directory"


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("2023-01-15-093000_create_users", "20230115093000"),
        ("00000000000000_diesel_initial_setup", "00000000000000"),
        ("20230115093000_create_users", "20230115093000"),
        ("001_create_widgets", "001"),
        ("42", "42"),
        ("create_users", None),
        ("v1_create_users", None),
        ("-1_x", None),
    ],
)
def test_the_version_is_what_precedes_the_first_underscore_without_dashes(
    name: str, version: str | None
) -> None:
    assert version_of(name) == version


def test_each_directory_is_one_migration_in_version_order() -> None:
    entries = catalog(DIESEL).entries

    assert [(e.name, e.version, e.description) for e in entries] == [
        ("00000000000000_initial_setup", "00000000000000", "initial_setup"),
        (USERS, "20240115093000", "create_users"),
        (EMAIL, "20240116101500", "add_users_email_index"),
        (POSTS, "20240201120000", "create_posts"),
    ]
    assert [(e.path.relative_to(DIESEL), e.others) for e in entries][1] == (
        Path(USERS, "up.sql"),
        (DIESEL / USERS / "down.sql",),
    )


def test_up_sql_is_the_forward_section_and_down_sql_the_rollback_with_its_boilerplate_a_note() -> (
    None
):
    users = read(DIESEL)[USERS]

    assert forward(users) == [
        (
            "CREATE TABLE users (\n    id         serial PRIMARY KEY,\n    name       varchar "
            "NOT NULL,\n    updated_at timestamp NOT NULL DEFAULT now()\n)",
            2,
        ),
        ("SELECT track_updated_at('users')", 7),
    ]
    assert down(users) == [("DROP TABLE users", 3)]
    assert users.rollback.notes == (
        "This file should undo anything in `up.sql`",
        "WARNING: every user is deleted; back up users first.",
    )
    assert users.comments == ("Your SQL goes here",)
    assert (users.format, users.rollback.source) == ("directory", "directory")
    assert users.all_problems == ()


def test_functions_with_dollar_bodies_are_one_statement_each() -> None:
    setup = read(DIESEL)["00000000000000_initial_setup"]

    assert [s.line for s in setup.statements] == [4, 11]
    assert setup.statements[0].sql.endswith("$$ LANGUAGE plpgsql")
    assert down(setup) == [
        ("DROP FUNCTION IF EXISTS track_updated_at(_tbl regclass)", 3),
        ("DROP FUNCTION IF EXISTS touch_updated_at()", 4),
    ]


def test_run_in_transaction_false_makes_both_sections_no_transaction_with_a_note() -> None:
    migrations = read(DIESEL)
    email = migrations[EMAIL]

    assert email.no_transaction
    assert email.rollback.no_transaction
    assert email.rollback.notes[-1].startswith(
        "metadata.toml says run_in_transaction = false: both files run outside a transaction"
    )
    posts = migrations[POSTS]  # run_in_transaction = true
    assert not posts.no_transaction
    assert not posts.rollback.no_transaction


def test_metadata_diesel_cannot_read_is_no_metadata_as_for_diesel() -> None:
    assert not read(DIGITS)["010_widget_archive"].no_transaction  # "false", a string
    broken = read(STRAYS)["2024-03-04-000000_broken_metadata"]
    assert not broken.no_transaction
    assert not broken.rollback.no_transaction


def test_windows_line_ends_and_a_marker_in_a_dollar_string() -> None:
    posts = read(DIESEL)[POSTS]

    assert [s.line for s in posts.statements] == [2]
    assert "$$-- Down Migration$$" in posts.statements[0].sql
    assert down(posts) == [("DROP TABLE posts", 3)]
    assert posts.all_problems == ()


def test_the_diesel_folder_lints_with_warnings_only() -> None:
    assert [f[:3] for f in findings(DIESEL)] == [
        (f"{EMAIL}/down.sql", "non-transactional", 1),
        (f"{EMAIL}/up.sql", "non-transactional", 2),
    ]


def test_no_down_sql_or_one_with_boilerplate_only_is_rollback_missing_in_its_words() -> None:
    found = findings(DIGITS)

    assert [f[:3] for f in found] == [
        ("002_add_widget_price/up.sql", "rollback-missing", 1),
        ("003_widget_stats/up.sql", "rollback-missing", 1),
        ("010_widget_archive/up.sql", "version-gap", 1),  # 004..009: a sequence, as for any format
    ]
    assert found[0][3] == (
        "no down.sql in 002_add_widget_price/: write the SQL that undoes this migration there"
    )
    assert found[1][3].startswith("down.sql holds no SQL statement: write the SQL that undoes")


def test_digit_versions_sort_as_numbers() -> None:
    assert [e.version for e in catalog(DIGITS).entries] == ["001", "002", "003", "010"]


def test_what_is_no_migration_directory_is_a_stray_reported_alone() -> None:
    entries = catalog(STRAYS).entries
    strays = sorted(e.name for e in entries if isinstance(e, Stray))

    assert strays == [
        "2024-03-01-000000_only_down",
        "2024-03-03-000000_upper_case",
        "create_things",
        "schema",
    ]  # .hidden_20240302_x/ and docs/ (no SQL) are not looked at
    found = {f[0]: f[1:] for f in findings(STRAYS) if f[1] == "name-format"}
    assert found["2024-03-01-000000_only_down"][2].startswith(
        "2024-03-01-000000_only_down/ holds SQL files but no up.sql (the name is case-sensitive)"
    )
    assert "does not start with a version" in found["create_things"][2]
    assert found["schema.sql"][2].startswith("schema.sql is a SQL file beside the migration")
    assert len(findings(STRAYS)) == 4 + 2  # and the concurrent index statements' warnings


def test_resolve_finds_a_directory_by_version_name_description_and_any_of_its_paths() -> None:
    cat = catalog(DIESEL)

    for reference in (
        "20240115093000",
        USERS,
        "create_users",
        str(DIESEL / USERS),
        str(DIESEL / USERS / "up.sql"),
        str(DIESEL / USERS / "down.sql"),
    ):
        assert cat.resolve(reference, DIESEL).name == USERS, reference


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(DIESEL, tmp_path / "migrations")
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n')
    monkeypatch.chdir(tmp_path)
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_show_json_gives_the_format_both_files_and_the_lines_of_each_section(
    project: Path,
) -> None:
    result = run("show", f"migrations/{EMAIL}", "--json")

    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["format"], shown["version"], shown["name"]) == (
        "directory",
        "20240116101500",
        EMAIL,
    )
    assert shown["sections"] == {
        "forward": {"path": f"migrations/{EMAIL}/up.sql", "lines": [1, 2]},
        "rollback": {"path": f"migrations/{EMAIL}/down.sql", "lines": [1, 3]},
    }
    assert [s["sql"] for s in shown["statements"]] == [
        "ALTER TABLE users ADD COLUMN email varchar",
        "CREATE INDEX CONCURRENTLY users_email_idx ON users (email)",
    ]
    assert [s["sql"] for s in shown["rollback"]["statements"]] == [
        "DROP INDEX CONCURRENTLY IF EXISTS users_email_idx",
        "ALTER TABLE users DROP COLUMN email",
    ]


def test_show_text_names_the_format_and_the_down_file(project: Path) -> None:
    result = run("show", "create_users")

    assert result.exit_code == 0, result.stderr
    assert "  format    directory" in result.stdout
    assert f"directory in migrations/{USERS}/down.sql at line 1" in result.stdout


# Property: any generated directory reads back to exactly its statements and lines.

dates = st.datetimes().map(lambda d: d.strftime("%Y-%m-%d-%H%M%S"))
directory_versions = st.one_of(dates, st.integers(1, 10**14).map(lambda n: f"{n:03d}"))
names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)


@given(
    st.lists(
        st.tuples(
            directory_versions, names, sql_files(min_size=1), st.none() | sql_files(), st.booleans()
        ),
        min_size=1,
        max_size=4,
        unique_by=lambda m: m[0].replace("-", ""),
    )
)
@settings(max_examples=60, deadline=None)
def test_generated_directories_read_back_exactly(
    migrations: list[tuple[str, str, SqlFile, SqlFile | None, bool]],
) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        for version, name, up, down_file, in_transaction in migrations:
            directory = folder / f"{version}_{name}"
            directory.mkdir()
            written(str(directory / "up.sql"), up.text)
            if down_file is not None:
                written(str(directory / "down.sql"), down_file.text)
            setting = "true" if in_transaction else "false"
            written(str(directory / "metadata.toml"), f"run_in_transaction   =  {setting}\r\n")

        assert detect(folder) == "directory"
        read_back = read(folder)
        for version, name, up, down_file, in_transaction in migrations:
            m = read_back[f"{version}_{name}"]
            assert m.version == version.replace("-", "")
            assert tuple(forward(m)) == up.statements
            assert m.no_transaction is (not in_transaction)
            if down_file is None:
                assert not m.rollback.found
            else:
                assert tuple(down(m)) == down_file.statements
                assert m.rollback.no_transaction is (not in_transaction)


@pytest.mark.parametrize(
    "path",
    [f"migrations/{USERS}/up.sql", f"migrations/{USERS}/down.sql", f"migrations/{USERS}"],
    ids=["up.sql", "down.sql", "directory"],
)
def test_lint_of_one_migrations_file_or_directory_reads_it_as_a_directory_migration(
    project: Path, path: str
) -> None:
    result = run("lint", path, "--format", "json")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["files"] == 1
