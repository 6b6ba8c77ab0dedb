"""Flyway folders: ``V<version>__<description>.sql`` migrations with their undo files
``U<version>__...``, versions as Flyway reads and orders them; repeatables, baselines, callbacks
and names Flyway ignores reported, never run."""

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
from backout.migrations.formats.flyway import Name, parse_name
from backout.migrations.formats.pairs import Stray
from backout.migrations.lint import lint_entries
from tests.migrations.formats.paired_sql import SqlFile, sql_files, written
from tests.runner import run

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "formats" / "flyway"
BASIC, VARIANTS = FIXTURES / "basic", FIXTURES / "variants"


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
    return [(f.file.name, f.rule, f.line, f.message) for f in report.findings]


@pytest.mark.parametrize(
    ("file", "kind", "version"),
    [
        ("V1__init.sql", "V", "1"),
        ("V1.2__add_jobs.sql", "V", "1.2"),
        ("V1_2__add_jobs.sql", "V", "1.2"),
        ("V2.0.1__patch.sql", "V", "2.0.1"),
        ("V001__padded.sql", "V", "001"),
        ("V20240115093000__timestamp.sql", "V", "20240115093000"),
        ("V3.sql", "V", "3"),
        ("V4__two__separators.sql", "V", "4"),
        ("U1_2__add_jobs.sql", "U", "1.2"),
        ("B5__baseline.sql", "B", "5"),
    ],
)
def test_names_are_read_as_flyway_reads_them(file: str, kind: str, version: str) -> None:
    assert parse_name(file) == Name(file, kind, version)


@pytest.mark.parametrize(
    ("file", "says"),
    [
        ("R__views.sql", "is a Flyway repeatable migration"),
        ("R1__views.sql", "is not a valid Flyway name"),
        ("afterMigrate.sql", "is a Flyway callback"),
        ("beforeEachMigrate__log.sql", "is a Flyway callback"),
        ("v1__lower.sql", "Flyway's prefixes are upper case"),
        ("V1_2_x.sql", "is not a valid Flyway name: the version `1_2_x`"),
        ("V__no_version.sql", "is not a valid Flyway name"),
        ("V1..2__x.sql", "is not a valid Flyway name"),
        ("V1__x.SQL", "ending in `.sql` (lower case) only"),
        ("seed.sql", "is not a Flyway migration name"),
    ],
)
def test_other_names_say_why_they_are_no_migration(file: str, says: str) -> None:
    reason = parse_name(file)

    assert isinstance(reason, str)
    assert says in reason


def test_flyway_versions_compare_without_trailing_zeros() -> None:
    assert Name("V1.0.0__x.sql", "V", "1.0.0").key == Name("V1__x.sql", "V", "1").key == (1,)


@pytest.mark.parametrize("folder", [BASIC, VARIANTS], ids=lambda p: p.name)
def test_every_fixture_folder_is_detected_as_flyway(folder: Path) -> None:
    assert detect(folder) == "flyway"


def test_a_folder_whose_migrations_are_all_in_sub_folders_is_detected(tmp_path: Path) -> None:
    (tmp_path / "release_1").mkdir()
    (tmp_path / "release_1" / "V1__init.sql").write_text("SELECT 1;\n")

    assert detect(tmp_path) == "flyway"


def test_versioned_migrations_in_flyway_order_each_with_its_undo_file_sub_folders_included() -> (
    None
):
    entries = catalog(BASIC).entries

    assert [(e.name, e.version, e.description) for e in entries] == [
        ("V1__create_customers", "1", "create_customers"),
        ("V1.1__add_customer_email", "1.1", "add_customer_email"),
        ("V1_2__create_invoices", "1.2", "create_invoices"),
        ("V2__add_invoice_customer_index", "2", "add_invoice_customer_index"),
        ("V10__seed_first_customer", "10", "seed_first_customer"),
    ]
    assert [[o.relative_to(BASIC) for o in e.others] for e in entries] == [
        [Path("U1__create_customers.sql")],
        [Path("U1.1__add_customer_email.sql")],
        [Path("U1_2__create_invoices.sql")],
        [Path("release_2/U2__add_invoice_customer_index.sql")],
        [Path("U10__seed_first_customer.sql")],
    ]
    assert {e.folder for e in entries} == {BASIC}


def test_the_v_file_is_the_forward_section_and_the_u_file_the_rollback() -> None:
    invoices = read(BASIC)["V1_2__create_invoices"]

    assert [s.line for s in invoices.statements] == [1, 6]
    assert invoices.statements[1].sql.endswith("WHERE customer_id = _customer;\n$$")
    assert down(invoices) == [
        ("DROP FUNCTION invoice_total(bigint)", 1),
        ("DROP TABLE invoices", 3),
    ]
    assert invoices.rollback.notes == ("WARNING: deletes every invoice; back up invoices first.",)
    assert (invoices.rollback.source, invoices.format) == ("flyway", "flyway")
    assert invoices.all_problems == ()


def test_a_marker_inside_a_string_never_refuses_the_file() -> None:
    email = read(BASIC)["V1.1__add_customer_email"]

    assert [s.line for s in email.statements] == [1, 2]
    assert email.all_problems == ()


def test_execute_in_transaction_false_in_a_conf_file_is_that_files_no_transaction() -> None:
    index = read(BASIC)["V2__add_invoice_customer_index"]

    assert index.no_transaction
    assert index.rollback.no_transaction
    assert index.rollback.notes == (
        "its .sql.conf says executeInTransaction=false: it runs outside a transaction, "
        "statement by statement; a failure leaves the statements before it done",
    )
    assert not read(BASIC)["V1__create_customers"].no_transaction


def test_windows_line_ends() -> None:
    seed = read(BASIC)["V10__seed_first_customer"]

    assert forward(seed) == [
        ("INSERT INTO customers (name, email)\nVALUES ('Ada', 'ada@example.com')", 1)
    ]
    assert down(seed) == [("DELETE FROM customers WHERE email = 'ada@example.com'", 3)]


def test_the_basic_folder_lints_with_warnings_only() -> None:
    assert [f[:3] for f in findings(BASIC)] == [
        ("V10__seed_first_customer.sql", "version-gap", 1),  # lint's, for whole-number versions
        ("U2__add_invoice_customer_index.sql", "non-transactional", 1),
        ("U2__add_invoice_customer_index.sql", "non-transactional", 2),
        ("V2__add_invoice_customer_index.sql", "non-transactional", 1),
        ("V2__add_invoice_customer_index.sql", "non-transactional", 2),
    ]


def test_repeatables_baselines_callbacks_and_ignored_names_are_strays() -> None:
    strays = {e.path.name: e for e in catalog(VARIANTS).entries if isinstance(e, Stray)}

    assert sorted(strays) == [
        "B5__baseline.sql",
        "R__product_view.sql",
        "U1__drop_products_again.sql",
        "U9__orphan_undo.sql",
        "V1.0__same_version.sql",
        "V7_missing_separator.sql",
        "V8__upper_suffix.SQL",
        "afterMigrate.sql",
        "seed_data.sql",
        "v6__lower_case_prefix.sql",
    ]
    found = {f[0]: f[3] for f in findings(VARIANTS) if f[1] == "name-format"}
    assert set(found) == set(strays)
    assert found["R__product_view.sql"].startswith(
        "R__product_view.sql is a Flyway repeatable migration: backout does not run repeatables"
    )
    assert found["B5__baseline.sql"].startswith(
        "B5__baseline.sql is a Flyway baseline migration (version 5)"
    )
    assert found["U9__orphan_undo.sql"].startswith(
        "U9__orphan_undo.sql undoes version 9, but there is no V9__*.sql"
    )
    assert found["V1.0__same_version.sql"].startswith(
        "V1.0__same_version.sql has the same Flyway version as V1__create_products.sql"
    )
    assert "U1__drop_products.sql is the first" in found["U1__drop_products_again.sql"]


def test_the_variants_migrations_and_their_problems() -> None:
    migrations = {n: m for n, m in read(VARIANTS).items() if m.version is not None}

    assert [(m.name, m.version) for m in migrations.values()] == [
        ("V1__create_products", "1"),
        ("V2.0.1__add_product_price", "2.0.1"),
        ("V3", "3"),
        ("V4__in_schema", "4"),
        ("V5__placeholders_off", "5"),
        ("V11__goose_file", "11"),
    ]
    assert down(migrations["V1__create_products"]) == [("DROP TABLE products", 1)]
    assert down(migrations["V3"]) == [("DROP INDEX products_sku_idx", 1)]
    found = {(f[0], f[1], f[2]) for f in findings(VARIANTS)}
    assert {
        ("V2.0.1__add_product_price.sql", "rollback-missing", 1),
        ("V11__goose_file.sql", "format-mismatch", 1),
        ("V11__goose_file.sql", "format-mismatch", 3),
    } <= found


def test_a_placeholder_is_refused_with_its_line_unless_replacement_is_off() -> None:
    in_schema = read(VARIANTS)["V4__in_schema"]

    placeholders = [
        (p.line, p.message.split("`")[1]) for p in in_schema.problems if "placeholder" in p.message
    ]
    assert placeholders == [(1, "${schema}"), (2, "${flyway:user}")]  # not the comment's
    assert [(p.line, p.code) for p in in_schema.rollback.problems][-1] == (1, "sql-syntax")
    assert "placeholder" in in_schema.rollback.problems[-1].message
    assert read(VARIANTS)["V5__placeholders_off"].problems[0].code == "rollback-missing"


def test_resolve_by_any_spelling_of_the_version_by_name_and_by_either_file() -> None:
    cat = catalog(BASIC)

    for reference in ("1.2", "1_2", "V1_2", "V1_2__create_invoices", "create_invoices"):
        assert cat.resolve(reference, BASIC).name == "V1_2__create_invoices", reference
    assert cat.resolve(str(BASIC / "U1_2__create_invoices.sql"), BASIC).version == "1.2"
    assert cat.resolve("release_2/U2__add_invoice_customer_index.sql", BASIC).version == "2"
    assert cat.resolve("10", BASIC).version == "10"
    assert cat.resolve("1", BASIC).version == "1"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(BASIC, tmp_path / "src" / "main" / "resources" / "db" / "migration")
    (tmp_path / "backout.toml").write_text(
        'migrations = ["src/main/resources/db/migration"]\n'
        'formats = {"src/main/resources/db/migration" = "flyway"}\n'
    )
    monkeypatch.chdir(tmp_path)
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_show_json_gives_the_format_both_files_and_the_lines_of_each_section(
    project: Path,
) -> None:
    result = run("show", "1.2", "--json")

    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    where = "src/main/resources/db/migration"
    assert (shown["format"], shown["version"], shown["name"]) == (
        "flyway",
        "1.2",
        "V1_2__create_invoices",
    )
    assert shown["sections"] == {
        "forward": {"path": f"{where}/V1_2__create_invoices.sql", "lines": [1, 9]},
        "rollback": {"path": f"{where}/U1_2__create_invoices.sql", "lines": [1, 3]},
    }
    assert [s["sql"] for s in shown["rollback"]["statements"]] == [
        "DROP FUNCTION invoice_total(bigint)",
        "DROP TABLE invoices",
    ]


# Property: any generated Flyway folder reads back to exactly its statements and lines.

parts = st.lists(st.integers(0, 40), min_size=1, max_size=3)
separators = st.sampled_from((".", "_"))
descriptions = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,15}", fullmatch=True)


@st.composite
def spelled(draw: st.DrawFn) -> tuple[tuple[int, ...], str]:
    """A version (trailing zeros dropped, as Flyway compares) and a spelling of it."""
    numbers = draw(parts)
    text = str(numbers[0])
    for number in numbers[1:]:
        text += draw(separators) + str(number)
    key = tuple(numbers)
    while len(key) > 1 and key[-1] == 0:
        key = key[:-1]
    return key, text


@given(
    st.lists(
        st.tuples(spelled(), descriptions, sql_files(min_size=1), st.none() | sql_files()),
        min_size=1,
        max_size=4,
        unique_by=lambda m: m[0][0],
    ),
    st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_generated_flyway_folders_read_back_exactly(
    migrations: list[tuple[tuple[tuple[int, ...], str], str, SqlFile, SqlFile | None]],
    separate_folder: bool,
) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        (folder / "undo").mkdir()
        for (_, version), description, up, undo in migrations:
            written(str(folder / f"V{version}__{description}.sql"), up.text)
            if undo is not None:
                where = folder / "undo" if separate_folder else folder
                written(str(where / f"U{version}__{description}.sql"), undo.text)

        read_back = read(folder)
        assert len(read_back) == len(migrations)
        for (_, version), description, up, undo in migrations:
            m = read_back[f"V{version}__{description}"]
            assert m.version == version.replace("_", ".")
            assert tuple(forward(m)) == up.statements
            assert tuple(down(m)) == (undo.statements if undo else ())
            assert m.rollback.found is (undo is not None)


@pytest.mark.parametrize(
    ("path", "files"),
    [
        ("release_2", 1),
        ("release_2/U2__add_invoice_customer_index.sql", 1),
        ("V1_2__create_invoices.sql", 1),
        ("", 5),
    ],
)
def test_lint_of_a_sub_folder_a_file_or_the_folder_reads_them_as_flyway(
    project: Path, path: str, files: int
) -> None:
    result = run("lint", f"src/main/resources/db/migration/{path}", "--format", "json")

    report = json.loads(result.stdout)
    assert (report["files"], report["errors"]) == (files, 0)
    assert result.exit_code == 0
