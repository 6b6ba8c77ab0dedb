"""Liquibase formatted SQL: one changeset per migration, read exactly, refused with the line.

The fixture folders (tests/fixtures/formats/liquibase/) are written here, not copied:
``numbered`` (files ``001-...``: one-line and multi-line rollbacks, a changeset without one,
``--rollback not required``, ``runInTransaction:false``), ``changelog`` (one unnumbered
``changelog.sql`` with numeric ids: ``/* liquibase rollback */`` block, preconditions,
``validCheckSum``, ``splitStatements:false`` around a ``$$`` body holding marker-like lines,
``endDelimiter:/``, ``dbms:``/``ignore:`` changesets that are not migrations, a rollback that
names an earlier changeset, ``--rollback empty``), ``variants`` (case and spacing of every marker,
a quoted author, ``GO`` delimiters, ``--ignoreLines``, CRLF with a BOM, ``BEGIN ... COMMIT``,
a trailing comment as a note, a header-only file) and ``refused`` (``${parameter}``, malformed
changeset and rollback lines, SQL before the first changeset, markers inside a string and a
``$$`` body, goose markers, an unclosed rollback block, a plain SQL file).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backout.errors import AmbiguousMigrationError, UnknownMigrationError
from backout.migrations.catalog import discover
from backout.migrations.file import MigrationFile
from backout.migrations.formats import detect
from backout.migrations.formats.liquibase import (
    ChangesetEntry,
    LiquibaseFormat,
    is_formatted,
    parse_changelog,
)
from backout.migrations.lint import lint_entries, refusals
from tests.runner import run

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures/formats/liquibase"
FORMAT = LiquibaseFormat()


def read_folder(name: str) -> dict[str, MigrationFile]:
    return {e.name: e.read() for e in FORMAT.entries(FIXTURES / name)}


def forward(m: MigrationFile) -> list[tuple[int, str]]:
    return [(s.line, s.sql) for s in m.statements]


def down(m: MigrationFile) -> list[tuple[int, str]]:
    return [(s.line, s.sql) for s in m.rollback.statements]


def problems(m: MigrationFile) -> list[tuple[int, str]]:
    return [(p.line, p.code) for p in m.all_problems]


# Detection and listing


@pytest.mark.parametrize("folder", ["numbered", "changelog", "variants", "refused"])
def test_every_fixture_folder_is_detected_as_liquibase(folder: str) -> None:
    assert detect(FIXTURES / folder) == "liquibase"


def test_a_strategy_folder_is_not_liquibase() -> None:
    assert detect(Path(__file__).resolve().parents[3] / "migrations") == "strategy"


@pytest.mark.parametrize(
    "first",
    [
        "--liquibase formatted sql",
        "-- liquibase formatted sql",
        "--LIQUIBASE FORMATTED SQL",
        "  --  liquibase   formatted   sql  logicalFilePath:x.sql",
        "\ufeff--liquibase formatted sql",
        "\n\n--liquibase formatted sql",
    ],
)
def test_the_first_non_blank_line_says_liquibase_whatever_its_case_and_spacing(
    tmp_path: Path, first: str
) -> None:
    (tmp_path / "a.sql").write_text(first + "\n--changeset a:1\nSELECT 1;\n")
    assert is_formatted(tmp_path / "a.sql")
    assert detect(tmp_path) == "liquibase"


@pytest.mark.parametrize(
    "text",
    [
        "-- Migration: 001\n--liquibase formatted sql\n",  # not the first line
        "--liquibase sql\n",
        "SELECT 1; --liquibase formatted sql\n",
    ],
)
def test_a_liquibase_line_elsewhere_is_not_liquibase(tmp_path: Path, text: str) -> None:
    (tmp_path / "001_a.sql").write_text(text)
    assert detect(tmp_path) == "strategy"


def test_numbered_files_give_their_number_and_the_changeset_position() -> None:
    entries = list(FORMAT.entries(FIXTURES / "numbered"))

    assert [(e.version, e.name) for e in entries] == [
        ("001.01", "001-create-accounts::create-accounts::maria"),
        ("001.02", "001-create-accounts::accounts-owner-index::maria"),
        ("002.01", "002-ledger::create-ledger::tomas"),
        ("002.02", "002-ledger::ledger-kinds::tomas"),
        ("002.03", "002-ledger::ledger-note-column::tomas"),
        ("002.04", "002-ledger::seed-reference-account::tomas"),
        ("003.01", "003-concurrent-index::ledger-amount-index::ines"),
    ]
    first = entries[0]
    assert isinstance(first, ChangesetEntry)
    assert first.description == "create-accounts"
    assert first.aliases == (
        "create-accounts",
        "maria:create-accounts",
        "001-create-accounts.sql::create-accounts::maria",
    )


def test_an_unnumbered_changelog_is_0_1_and_skipped_changesets_keep_their_place() -> None:
    entries = list(FORMAT.entries(FIXTURES / "changelog"))

    # ana:5 (dbms:oracle) and ana:6 (ignore:true) never run on PostgreSQL: no migration, but
    # the positions after them do not move.
    assert [(e.version, e.name) for e in entries] == [
        ("0.1.01", "changelog::1::ana"),
        ("0.1.02", "changelog::2::ana"),
        ("0.1.03", "changelog::3::ben"),
        ("0.1.04", "changelog::4::ben"),
        ("0.1.07", "changelog::7::ben"),
        ("0.1.08", "changelog::8::ben"),
        ("0.1.09", "changelog::9::cleo"),
    ]


def test_dates_and_timestamps_number_files_and_a_header_only_file_is_no_migration() -> None:
    entries = list(FORMAT.entries(FIXTURES / "variants"))

    assert [(e.version, e.name) for e in entries] == [
        ("2024-02-01.01", "2024-02-01-returns::returns-1::lena"),
        ("2024-02-01.02", "2024-02-01-returns::returns-2::lena"),
        ("20240115093000.01", "20240115093000_shipping::ship-1::Rui Costa"),
        ("20240115093000.02", "20240115093000_shipping::ship-2::rui"),
        ("20240115093000.03", "20240115093000_shipping::ship-3::rui"),
    ]
    catalog = discover(FIXTURES, (FIXTURES / "variants",), formats={})
    # by their digit groups: (2024, 2, 1, n) before (20240115093000, n); one folder mixing the
    # two styles is ordered so
    assert [e.version for e in catalog.entries] == [
        "2024-02-01.01",
        "2024-02-01.02",
        "20240115093000.01",
        "20240115093000.02",
        "20240115093000.03",
    ]


def test_files_without_a_number_are_numbered_by_name_before_the_numbered_ones(
    tmp_path: Path,
) -> None:
    body = "--liquibase formatted sql\n--changeset a:{0}\nSELECT {0};\n--rollback SELECT 0;\n"
    for name in ("orders.sql", "accounts.sql", "010-later.sql", "notes.sql"):
        (tmp_path / name).write_text(body.format(len(name)))
    (tmp_path / "notes.sql").write_text("--liquibase formatted sql\n-- only comments\n")

    catalog = discover(tmp_path, (tmp_path,))

    assert [(e.version, e.path.name) for e in catalog.entries] == [
        ("0.1.01", "accounts.sql"),
        ("0.2.01", "orders.sql"),  # notes.sql holds no changeset: it takes no number
        ("010.01", "010-later.sql"),
    ]


# What each changeset holds, exactly


def test_the_numbered_folder_reads_exactly() -> None:
    found = read_folder("numbered")

    accounts = found["001-create-accounts::create-accounts::maria"]
    assert forward(accounts) == [
        (
            5,
            "CREATE TABLE accounts (\n"
            "    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
            "    owner text NOT NULL,\n"
            "    created_at timestamptz NOT NULL DEFAULT now()\n"
            ")",
        )
    ]
    assert down(accounts) == [(11, "DROP TABLE accounts")]
    assert accounts.rollback.notes == ("WARNING: drops every account; back up accounts first.",)
    assert accounts.rollback.source == "liquibase"
    assert (accounts.rollback.line, accounts.rollback.path) == (10, accounts.path)
    assert accounts.rollback.text == (
        "--rollback -- WARNING: drops every account; back up accounts first.\n"
        "--rollback DROP TABLE accounts;"
    )
    assert accounts.header == {
        "changeset": "maria:create-accounts",
        "author": "maria",
        "id": "create-accounts",
        "comment": "the accounts every ledger entry belongs to",
    }
    assert accounts.format == "liquibase"
    assert not accounts.no_transaction
    assert accounts.all_problems == ()

    ledger = found["002-ledger::create-ledger::tomas"]
    assert [line for line, _ in forward(ledger)] == [4, 9]
    assert down(ledger) == [
        (11, "DROP INDEX ledger_entries_account"),
        (12, "DROP TABLE\n    ledger_entries"),  # one statement over two --rollback lines
    ]


def test_a_changeset_without_rollback_lines_documents_none() -> None:
    note = read_folder("numbered")["002-ledger::ledger-note-column::tomas"]

    assert forward(note) == [(21, "ALTER TABLE ledger_entries ADD COLUMN note text")]
    assert not note.rollback.found
    assert note.rollback.line == 20
    assert note.rollback.checksum is None


def test_rollback_not_required_and_empty_are_documented_as_irreversible() -> None:
    seed = read_folder("numbered")["002-ledger::seed-reference-account::tomas"]
    vacuum = read_folder("changelog")["changelog::9::cleo"]

    for m, word in ((seed, "not required"), (vacuum, "empty")):
        assert m.rollback.found
        assert m.rollback.statements == ()
        assert m.rollback.notes[0].startswith(f"`--rollback {word}`: ")
        assert "irreversible" in m.rollback.notes[0]
        assert m.rollback.problems == ()


def test_run_in_transaction_false_marks_both_sections() -> None:
    index = read_folder("numbered")["003-concurrent-index::ledger-amount-index::ines"]

    assert index.no_transaction
    assert index.rollback.no_transaction
    assert down(index) == [(6, "DROP INDEX CONCURRENTLY ledger_entries_amount")]
    assert index.header["runInTransaction"] == "false"


def test_the_changelog_folder_reads_exactly() -> None:
    found = read_folder("changelog")

    products = found["changelog::1::ana"]
    assert products.header["validCheckSum"] == "ANY"
    assert products.header["labels"] == "catalog"
    assert products.header["context"] == "!test"

    prices = found["changelog::2::ana"]
    assert [line for line, _ in forward(prices)] == [18]
    assert down(prices) == [(24, "DROP TABLE product_prices")]  # the block's statement
    assert prices.rollback.line == 22
    assert prices.rollback.notes == ("WARNING: prices are lost; back up product_prices first.",)
    assert prices.header["preconditions"] == "onFail:MARK_RAN onError:HALT"
    assert prices.header["precondition-sql-check"].startswith("expectedResult:0 SELECT count(*)")

    touch = found["changelog::3::ben"]
    assert [line for line, _ in forward(touch)] == [28]
    assert "-- +goose Down (a goose marker in a body is only text)" in touch.statements[0].sql
    assert touch.all_problems == ()  # marker-like lines inside the $$ body are body text
    assert down(touch) == [(36, "DROP FUNCTION touch_product()")]

    band = found["changelog::4::ben"]
    assert [(line, sql.split("\n")[0]) for line, sql in forward(band)] == [
        (39, "CREATE FUNCTION price_band(cents integer) RETURNS text AS $body$"),
        (43, "CREATE TRIGGER products_touch BEFORE INSERT OR UPDATE ON products"),
    ]
    assert down(band) == [
        (46, "DROP TRIGGER products_touch ON products"),
        (47, "DROP FUNCTION price_band(integer)"),
    ]


def test_a_rollback_naming_an_earlier_changeset_runs_that_changesets_sql() -> None:
    found = read_folder("changelog")
    view = found["changelog::7::ben"]
    drop = found["changelog::8::ben"]

    assert forward(drop) == [(64, "DROP VIEW cheap_products")]
    assert down(drop) == forward(view)
    assert drop.rollback.notes == ("the rollback runs changeset ben:7's SQL (line 57)",)
    assert drop.rollback.line == 65
    # its checksum follows the changeset it names
    assert "CREATE VIEW cheap_products AS" in drop.rollback.text


def test_the_variants_read_like_their_plain_spelling() -> None:
    found = read_folder("variants")

    ship = found["20240115093000_shipping::ship-1::Rui Costa"]
    assert ship.header["author"] == "Rui Costa"
    assert ship.header["Labels"] == "shipping, v2"
    assert not ship.no_transaction  # RUNINTRANSACTION:TRUE
    assert down(ship) == [
        (6, "DROP TABLE shipments"),
        (7, "DROP TABLE IF EXISTS shipments_archive"),
    ]
    assert ship.rollback.notes == ("WARNING: shipment rows are lost",)

    carriers = found["20240115093000_shipping::ship-2::rui"]
    assert forward(carriers) == [
        (14, "CREATE TABLE carriers (code text PRIMARY KEY, note text DEFAULT 'a; b')"),
        (16, "INSERT INTO carriers (code) VALUES ('dhl'), ('ups')"),
    ]  # the --ignoreLines block (SET, a psql meta-command) is not SQL
    assert down(carriers) == [
        (18, "DELETE FROM carriers WHERE code IN ('dhl', 'ups')"),
        (21, "DROP TABLE carriers"),
    ]
    assert carriers.all_problems == ()

    index = found["20240115093000_shipping::ship-3::rui"]
    assert forward(index) == [(27, "CREATE INDEX shipments_carrier ON shipments (carrier)")]
    assert index.all_problems == ()  # the \echo line --ignoreLines:1 hides


def test_crlf_and_a_bom_and_a_wrapper_read_like_unix_text() -> None:
    found = read_folder("variants")

    returns = found["2024-02-01-returns::returns-1::lena"]
    assert forward(returns) == [
        (4, "CREATE TABLE returns (\n    id bigint PRIMARY KEY,\n    reason text\n)")
    ]
    assert down(returns) == [(8, "DROP TABLE\n  returns")]

    approved = found["2024-02-01-returns::returns-2::lena"]
    assert forward(approved) == [
        (13, "ALTER TABLE returns ADD COLUMN approved boolean NOT NULL DEFAULT false")
    ]
    assert approved.wrapper is not None
    assert approved.wrapper.lines == (12, 14)
    assert down(approved) == [(16, "ALTER TABLE returns DROP COLUMN approved")]
    assert approved.rollback.wrapper is not None
    assert approved.rollback.wrapper.lines == (15, 17)
    assert approved.all_problems == ()


# Refused, with the line


def test_every_refused_construct_is_a_problem_on_its_line() -> None:
    found = read_folder("refused")

    assert {name: problems(m) for name, m in found.items()} == {
        "001-parameters::audit-log::kim": [(5, "sql-syntax"), (6, "rollback-unparseable")],
        "002-malformed::coupons::kim": [
            (2, "sql-syntax"),  # SQL before the first changeset: never run by Liquibase
            (6, "rollback-unparseable"),  # --rollback: ...
            (7, "rollback-unparseable"),  # -- ROLLBACK heading
        ],
        "002-malformed::line-10": [(10, "sql-syntax")],  # --changeset kim
        "002-malformed::line-14": [(14, "sql-syntax")],  # --changeset kim: gift-cards
        "002-malformed::prose-rollback::kim": [(20, "rollback-unparseable")],
        "002-malformed::later-reference::kim": [(24, "rollback-unparseable")],
        "003-bodies::notes::kim": [(6, "rollback-unparseable")],  # --rollback in a string
        "003-bodies::note-count::kim": [(12, "sql-syntax")],  # --changeset in a $$ body
        "004-goose-leftover::leftovers::kim": [(4, "format-mismatch"), (6, "format-mismatch")],
        "005-unclosed-block::badges::kim": [(5, "rollback-unparseable")],
        "cleanup": [(1, "format-mismatch")],
    }


def test_the_messages_say_what_liquibase_does_and_the_fix() -> None:
    found = read_folder("refused")

    def message(name: str, line: int) -> str:
        return next(p.message for p in found[name].all_problems if p.line == line)

    assert message("001-parameters::audit-log::kim", 5).startswith(
        "`${schema}` is a Liquibase changelog parameter: backout runs the SQL as written"
    )
    assert message("002-malformed::coupons::kim", 2).startswith(
        "SQL before the file's first `--changeset` line: Liquibase never runs it"
    )
    assert message("002-malformed::coupons::kim", 6).startswith(
        "`--rollback: DROP TABLE coupons;` is not a Liquibase rollback line"
    )
    assert message("002-malformed::line-10", 10).startswith(
        "not a changeset line Liquibase accepts: write `--changeset <author>:<id>`"
    )
    assert message("002-malformed::prose-rollback::kim", 20).startswith(
        "in the `--rollback` SQL: PostgreSQL's parser rejects this: syntax error"
    )
    assert message("003-bodies::notes::kim", 6).startswith(
        "a `--rollback` line inside a string or `$$` body: Liquibase reads files line by line"
    )
    assert message("004-goose-leftover::leftovers::kim", 6).startswith(
        "`-- +goose Down` is a goose marker, but this folder is read as liquibase"
    )
    assert message("005-unclosed-block::badges::kim", 5).startswith(
        "this `/* liquibase rollback` block is never closed"
    )
    assert message("cleanup", 1).startswith("cleanup.sql is not Liquibase formatted SQL")


def test_a_marker_in_a_string_or_body_never_splits_the_statement() -> None:
    found = read_folder("refused")

    notes = found["003-bodies::notes::kim"]
    assert forward(notes)[1] == (
        5,
        "INSERT INTO notes (body) VALUES ('first line\n--rollback DROP TABLE notes;\nlast line')",
    )
    assert down(notes) == [(8, "DROP TABLE notes")]
    count = found["003-bodies::note-count::kim"]
    assert len(count.statements) == 1
    assert "--changeset kim:inside-a-body" in count.statements[0].sql


def test_apply_rollback_and_emergency_refuse_what_would_run_wrong() -> None:
    found = read_folder("refused")

    for name, m in found.items():
        assert refusals(m, forward=True), name  # apply refuses every one
    # a rollback is refused where its own section (or a foreign marker) is wrong
    refused_down = {name for name, m in found.items() if refusals(m, forward=False)}
    assert refused_down == {
        "001-parameters::audit-log::kim",
        "002-malformed::coupons::kim",
        "002-malformed::prose-rollback::kim",
        "002-malformed::later-reference::kim",
        "003-bodies::notes::kim",
        "004-goose-leftover::leftovers::kim",
        "005-unclosed-block::badges::kim",
        "cleanup",  # not Liquibase: nothing of it is run
    }


def test_lint_of_the_numbered_folder() -> None:
    report = lint_entries(list(FORMAT.entries(FIXTURES / "numbered")))

    assert [(f.file.name, f.line, f.rule) for f in report.findings] == [
        # accounts exists when the next changeset indexes it: index it concurrently
        ("001-create-accounts.sql", 14, "index-not-concurrent"),
        ("001-create-accounts.sql", 15, "index-not-concurrent"),
        ("002-ledger.sql", 18, "rollback-data-loss"),
        ("002-ledger.sql", 20, "rollback-missing"),
        ("003-concurrent-index.sql", 5, "non-transactional"),
        ("003-concurrent-index.sql", 6, "non-transactional"),
    ]
    missing = report.findings[3].message
    assert "changeset tomas:ledger-note-column has no `--rollback` line" in missing
    assert "ROLLBACK block" not in missing


def test_the_changelog_and_variants_folders_lint_clean_of_errors() -> None:
    for folder in ("changelog", "variants"):
        report = lint_entries(list(FORMAT.entries(FIXTURES / folder)))
        assert report.errors == 0, [(f.file.name, f.line, f.rule) for f in report.findings]


# Checksums and versions stay put when changesets are added


CHANGELOG = """--liquibase formatted sql

--changeset a:1
CREATE TABLE t1 (id int);
--rollback DROP TABLE t1;
"""


def test_appending_a_changeset_with_its_comments_changes_nothing_before_it() -> None:
    before = parse_changelog(Path("/db/001-x.sql"), CHANGELOG.encode())
    grown = CHANGELOG + (
        "\n-- the second table, for the reports\n"
        "--changeset a:2\nCREATE TABLE t2 (id int);\n--rollback DROP TABLE t2;\n"
    )

    after = parse_changelog(Path("/db/001-x.sql"), grown.encode())

    assert [(m.version, m.checksum, m.rollback.checksum) for m in after[:1]] == [
        (m.version, m.checksum, m.rollback.checksum) for m in before
    ]
    assert [m.version for m in after] == ["001.01", "001.02"]


def test_editing_a_changeset_changes_its_checksum_only() -> None:
    before = parse_changelog(Path("/db/001-x.sql"), (CHANGELOG * 1).encode())
    edited = CHANGELOG.replace("t1 (id int)", "t1 (id bigint)")
    after = parse_changelog(Path("/db/001-x.sql"), edited.encode())

    assert after[0].checksum != before[0].checksum
    assert after[0].rollback.checksum == before[0].rollback.checksum


def test_an_unreadable_file_is_one_migration_that_says_why(tmp_path: Path) -> None:
    (tmp_path / "001-a.sql").write_text(CHANGELOG)
    (tmp_path / "002-b.sql").write_bytes(b"--liquibase formatted sql\n\xff\xfe\n")

    report = lint_entries(list(FORMAT.entries(tmp_path)))

    assert [
        (f.file.name, f.line, f.rule) for f in report.findings if f.rule != "rollback-data-loss"
    ] == [("002-b.sql", 2, "unreadable")]


# Naming a changeset: by id, author:id, Liquibase's name, version, path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "numbered", tmp_path / "db")
    shutil.copytree(FIXTURES / "changelog", tmp_path / "catalog")
    (tmp_path / "backout.toml").write_text('migrations = ["db", "catalog"]\n')
    return tmp_path


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("create-ledger", "002-ledger::create-ledger::tomas"),
        ("tomas:ledger-kinds", "002-ledger::ledger-kinds::tomas"),
        ("002-ledger.sql::ledger-kinds::tomas", "002-ledger::ledger-kinds::tomas"),
        ("002-ledger::ledger-kinds::tomas", "002-ledger::ledger-kinds::tomas"),
        ("002.03", "002-ledger::ledger-note-column::tomas"),
        ("2.3", "002-ledger::ledger-note-column::tomas"),
        ("0.1.08", "changelog::8::ben"),
        ("8", "changelog::8::ben"),  # an id that is a number
        ("ben:3", "changelog::3::ben"),
        ("db/003-concurrent-index.sql", "003-concurrent-index::ledger-amount-index::ines"),
        ("catalog/changelog.sql::7::ben", "changelog::7::ben"),
    ],
)
def test_a_changeset_is_found_by_every_name_people_use(
    project: Path, reference: str, name: str
) -> None:
    catalog = discover(project, (project / "db", project / "catalog"))

    assert catalog.resolve(reference, project).name == name


def test_a_file_of_several_changesets_is_ambiguous_and_lists_them(project: Path) -> None:
    catalog = discover(project, (project / "db", project / "catalog"))

    with pytest.raises(AmbiguousMigrationError) as caught:
        catalog.resolve("db/001-create-accounts.sql", project)

    assert caught.value.candidates == (
        "001-create-accounts::create-accounts::maria",
        "001-create-accounts::accounts-owner-index::maria",
    )


def test_one_id_by_two_authors_names_both_changesets(tmp_path: Path) -> None:
    (tmp_path / "001-a.sql").write_text(
        "--liquibase formatted sql\n--changeset ann:1\nSELECT 1;\n--changeset bob:1\nSELECT 2;\n"
    )
    catalog = discover(tmp_path, (tmp_path,))

    with pytest.raises(AmbiguousMigrationError, match="001-a::1::ann, 001-a::1::bob"):
        catalog.resolve("1", tmp_path)
    assert catalog.resolve("bob:1", tmp_path).name == "001-a::1::bob"
    with pytest.raises(UnknownMigrationError):
        catalog.resolve("carl:1", tmp_path)


def test_show_json_gives_the_exact_sections(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)

    result = run("show", "tomas:create-ledger", "--json")

    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["format"] == "liquibase"
    assert (shown["version"], shown["name"]) == ("002.01", "002-ledger::create-ledger::tomas")
    assert [(s["line"], s["sql"].split("\n")[0]) for s in shown["statements"]] == [
        (4, "CREATE TABLE ledger_entries ("),
        (9, "CREATE INDEX ledger_entries_account ON ledger_entries (account_id)"),
    ]
    assert shown["rollback"] == {
        "statements": [
            {"sql": "DROP INDEX ledger_entries_account", "line": 11},
            {"sql": "DROP TABLE\n    ledger_entries", "line": 12},
        ],
        "notes": ["WARNING: the ledger's rows are lost; back up ledger_entries before rollback."],
        "source": "liquibase",
    }
    assert shown["sections"] == {
        "forward": {"path": "db/002-ledger.sql", "lines": [4, 9]},
        "rollback": {"path": "db/002-ledger.sql", "lines": [11, 13]},
    }
    assert shown["header"]["changeset"] == "tomas:create-ledger"


def test_lint_of_one_file_lints_all_its_changesets(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)

    result = run("lint", "db/002-ledger.sql", "--json")

    findings = json.loads(result.stdout)["findings"]
    assert [(f["line"], f["rule"]) for f in findings] == [
        (18, "rollback-data-loss"),
        (20, "rollback-missing"),
    ]


# Generated files round-trip through the reader

VOCABULARY = (
    "CREATE TABLE {0} (id bigint PRIMARY KEY, note text DEFAULT 'a; b')",
    "ALTER TABLE {0} ADD COLUMN flag boolean NOT NULL DEFAULT false",
    "INSERT INTO {0} (id) VALUES (1), (2)",
    "CREATE INDEX {0}_idx ON {0} (id)",
    "COMMENT ON TABLE {0} IS 'rollback: --changeset a:b is text here'",
    "CREATE FUNCTION {0}() RETURNS int AS $$\n-- +goose Down\n-- migrate:down\nSELECT 1;\n"
    "$$ LANGUAGE sql",
)
DOWN = (
    "DROP TABLE {0}",
    "DROP INDEX {0}_idx",
    "ALTER TABLE {0}\n  DROP COLUMN flag",
    "DELETE FROM {0} WHERE id IN (1, 2)",
    "DROP FUNCTION {0}()",
)
tables = st.from_regex(r"t_[a-z0-9]{1,8}", fullmatch=True)
authors = st.from_regex(r"[a-z][a-z0-9.]{0,8}", fullmatch=True)
ids = st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}", fullmatch=True)
dashes = st.sampled_from(["--", "-- ", "--  ", " --"])


def spelled(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.upper(), word.capitalize()])


@st.composite
def changesets(draw: st.DrawFn) -> dict[str, object]:
    table = draw(tables)
    ups = draw(st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=3))
    downs = draw(st.lists(st.sampled_from(DOWN), max_size=3))
    return {
        "author": draw(authors),
        "id": draw(ids),
        "forward": [u.format(table) for u in ups],
        "down": [d.format(table) for d in downs],
        "no_transaction": draw(st.booleans()),
        "changeset": draw(dashes) + draw(spelled("changeset")),
        "rollback": [draw(dashes).rstrip() + draw(spelled("rollback")) for _ in downs],
        "rollback_first": draw(st.booleans()),  # some teams put --rollback under --changeset
    }


def render(sets: list[dict[str, object]], header: str, newline: str) -> str:
    lines = [header, ""]
    for c in sets:
        attributes = " runInTransaction:false" if c["no_transaction"] else ""
        lines.append(f"{c['changeset']} {c['author']}:{c['id']}{attributes}")
        ups = [f"{sql};" for sql in c["forward"]]  # type: ignore[attr-defined]
        downs = [
            f"{marker} {part}"
            for marker, sql in zip(c["rollback"], c["down"], strict=True)  # type: ignore[call-overload]
            for part in f"{sql};".split("\n")
        ]
        lines += [*downs, *ups] if c["rollback_first"] else [*ups, *downs]
        lines.append("")
    return newline.join(lines)


@settings(max_examples=60, deadline=None)
@given(
    sets=st.lists(changesets(), min_size=1, max_size=4),
    header=st.sampled_from(["--liquibase formatted sql", "-- LIQUIBASE formatted SQL"]),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_generated_changelogs_round_trip(
    sets: list[dict[str, object]], header: str, newline: str
) -> None:
    text = render(sets, header, newline)

    read = parse_changelog(Path("/db/007-generated.sql"), text.encode())

    assert [m.version for m in read] == [f"007.{n:02d}" for n in range(1, len(sets) + 1)]
    for m, c in zip(read, sets, strict=True):
        assert m.name == f"007-generated::{c['id']}::{c['author']}"
        assert [s.sql for s in m.statements] == c["forward"]
        assert [s.sql for s in m.rollback.statements] == c["down"]
        assert m.rollback.found == bool(c["down"])
        assert m.no_transaction == c["no_transaction"]
        assert m.all_problems == ()


@settings(max_examples=30, deadline=None)
@given(sets=st.lists(changesets(), min_size=2, max_size=4))
def test_appending_changesets_keeps_the_versions_and_checksums_before_them(
    sets: list[dict[str, object]],
) -> None:
    path = Path("/db/changelog.sql")
    header = "--liquibase formatted sql"
    before = parse_changelog(path, render(sets[:1], header, "\n").encode())

    after = parse_changelog(path, render(sets, header, "\n").encode())

    assert [(m.version, m.checksum, m.rollback.checksum) for m in after[:1]] == [
        (m.version, m.checksum, m.rollback.checksum) for m in before
    ]
    assert [m.version for m in after] == [f"0.1.{n:02d}" for n in range(1, len(sets) + 1)]


MARKERS = (
    "--changeset ann:inner",
    "-- changeset bob:2 runInTransaction:false",
    "--rollback DROP TABLE t;",
    "-- ROLLBACK DROP TABLE t;",
    "-- +goose Down",
    "-- migrate:down",
    "-- Down Migration",
    "--liquibase formatted sql",
)


@settings(max_examples=60, deadline=None)
@given(
    inner=st.lists(st.sampled_from(MARKERS), min_size=1, max_size=4),
    quote=st.sampled_from(["$$", "$fn$", "'"]),
)
def test_markers_inside_a_body_or_string_never_split_it(inner: list[str], quote: str) -> None:
    body = "\n".join(inner).replace("'", "''") if quote == "'" else "\n".join(inner)
    value = f"SELECT 1 AS x;\n{body}\n" if quote != "'" else f"x\n{body}\n"
    if quote == "'":
        sql = f"INSERT INTO notes (body) VALUES ('{value}')"
    else:
        sql = f"CREATE FUNCTION f() RETURNS int AS {quote}\n{value}{quote} LANGUAGE sql"
    text = f"--liquibase formatted sql\n--changeset a:1\n{sql};\n--rollback DROP FUNCTION f();\n"

    (m,) = parse_changelog(Path("/db/001-x.sql"), text.encode())

    assert [s.sql for s in m.statements] == [sql]
    assert [s.sql for s in m.rollback.statements] == ["DROP FUNCTION f()"]
    first = 5 if quote != "'" else 4  # the line of inner[0]
    liquibase_markers = {
        first + n
        for n, line in enumerate(inner)
        if "changeset" in line.lower() or line.lower().startswith(("--rollback", "-- rollback"))
    }
    # Liquibase (line by line) would cut the body at its own markers: those lines are refused
    assert {p.line for p in m.all_problems} == liquibase_markers


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("--rollback: DROP TABLE t;", "rollback-unparseable"),
        ("--rollback\tDROP TABLE t;", "rollback-unparseable"),
        ("-- ROLLBACK", "rollback-unparseable"),
        ("-- Rollback:", "rollback-unparseable"),
        ("--rollback", "rollback-unparseable"),
        ("-- rollback plan: ask the DBA", "rollback-unparseable"),  # Liquibase runs "plan: ..."
        ("-- rollback-safe: yes", None),  # a remark Liquibase ignores too
        ("-- rollbacks are rehearsed in staging", None),
    ],
)
def test_what_liquibase_would_ignore_as_a_rollback_is_refused(line: str, code: str | None) -> None:
    text = f"--liquibase formatted sql\n--changeset a:1\nCREATE TABLE t (id int);\n{line}\n"

    (m,) = parse_changelog(Path("/db/001-x.sql"), text.encode())

    assert [(p.line, p.code) for p in m.all_problems] == ([(4, code)] if code else [])
    assert [s.sql for s in m.statements] == ["CREATE TABLE t (id int)"]
