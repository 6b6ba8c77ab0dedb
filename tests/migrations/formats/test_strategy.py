"""The strategy format on the fixture folders (tests/fixtures/formats/strategy/): what each file
gives, exactly, the rollback scripts beside the migrations, and what is refused.

``billing/`` is a folder as a team writes it: the seed layout with a verification block after
the rollback, header remarks (a note, a one-statement rollback with a remark), qualified
headings, a CRLF file, a sentence heading, rollback scripts named after their migration
(``_rollback.sql``, ``rollback_*.sql``, ``.down.sql``) and one named after none.
``refused/`` holds what must not run: a doubly commented step, SQL after a verification heading,
a header remark that disagrees with the section, a statement with words after its ``;``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backout.errors import MalformedMigrationError
from backout.migrations.entry import Entry
from backout.migrations.file import MigrationFile
from backout.migrations.formats.strategy import (
    StrategyFormat,
    orphan_rollback_files,
    orphans_in,
)
from backout.migrations.lint import lint_entries, refusals, require_runnable

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "formats" / "strategy"
BILLING = FIXTURES / "billing"
REFUSED = FIXTURES / "refused"
FORMAT = StrategyFormat()


def entries(folder: Path) -> dict[str, Entry]:
    return {e.name: e for e in FORMAT.entries(folder)}


def read(folder: Path, name: str) -> MigrationFile:
    return FORMAT.read(entries(folder)[name])


def forward(m: MigrationFile) -> list[tuple[str, int]]:
    return [(s.sql, s.line) for s in m.statements]


def rollback(m: MigrationFile) -> list[tuple[str, int]]:
    return [(s.sql, s.line) for s in m.rollback.statements]


def problems(m: MigrationFile) -> list[tuple[str, int]]:
    return [(p.code, p.line) for p in m.all_problems]


def test_the_folder_lists_migrations_and_never_a_rollback_script() -> None:
    found = entries(BILLING)

    assert sorted(found) == [
        "001_create_accounts",
        "002_add_accounts_name_index",
        "003_add_accounts_plan",
        "004_create_invoices",
        "005_create_payments",
        "006_add_invoices_due_date",
        "007_create_plans",
        "008_add_accounts_plan_fk",
        "009_create_invoice_totals_view",
        "010_create_refund_function",
        "011_add_accounts_country",
    ]
    assert {name: [p.name for p in e.others] for name, e in found.items() if e.others} == {
        "007_create_plans": ["007_create_plans_rollback.sql"],
        "008_add_accounts_plan_fk": ["rollback_008_add_accounts_plan_fk.sql"],
        "010_create_refund_function": ["010_create_refund_function.down.sql"],
    }


def test_the_seed_layout_ends_its_rollback_at_the_verification_block() -> None:
    m = read(BILLING, "001_create_accounts")

    assert [line for _, line in forward(m)] == [11, 17]
    assert "-- ROLLBACK\n  -- VERIFICATION QUERIES" in m.statements[1].sql  # a $$ body
    assert "'Rollback: never read from a string'" in m.statements[0].sql
    assert m.rollback.line == 27
    assert rollback(m) == [
        ("DROP FUNCTION IF EXISTS accounts_touch()", 30),
        ("DROP TABLE IF EXISTS accounts", 31),
    ]
    assert m.rollback.notes == (
        "WARNING: This will delete all account data. Backup before rollback.",
    )
    assert "VERIFICATION" not in m.rollback.text
    assert m.rollback.text.endswith("Backup before rollback.\n")
    assert problems(m) == []


def test_a_header_remark_followed_by_sql_is_a_note_and_the_sql_stays_forward() -> None:
    m = read(BILLING, "002_add_accounts_name_index")

    assert forward(m) == [("CREATE INDEX idx_accounts_name ON accounts (name)", 7)]
    assert (m.rollback.source, m.rollback.line, rollback(m)) == ("remark", 5, [])
    assert m.rollback.notes == ("not needed for the index (it goes with the table)",)
    assert m.header_value("Rollback") == "not needed for the index (it goes with the table)"
    assert problems(m) == []


def test_a_header_remark_that_parses_is_a_one_statement_rollback_with_its_remark() -> None:
    m = read(BILLING, "003_add_accounts_plan")

    assert forward(m) == [("ALTER TABLE accounts ADD COLUMN plan text NOT NULL DEFAULT 'free'", 11)]
    assert rollback(m) == [("ALTER TABLE accounts DROP COLUMN IF EXISTS plan", 5)]
    assert m.rollback.notes == ("(no data to unwind)",)
    assert m.rollback.text == (
        "-- Rollback: ALTER TABLE accounts DROP COLUMN IF EXISTS plan;  (no data to unwind)"
    )
    assert problems(m) == []  # the commented-out first attempt is not rollback SQL


def test_a_qualified_heading_is_found_and_post_deploy_checks_end_it() -> None:
    m = read(BILLING, "004_create_invoices")

    assert [line for _, line in forward(m)] == [6]
    assert (m.rollback.source, m.rollback.line) == ("comment-block", 13)
    assert rollback(m) == [("DROP TABLE IF EXISTS invoices", 14)]
    assert m.rollback.notes == (
        "(manual, if needed)",
        "WARNING: deletes every invoice. Back up invoices before rollback.",
    )
    assert problems(m) == []


def test_a_crlf_file_with_a_down_slash_rollback_heading_and_notes_after_it() -> None:
    m = read(BILLING, "005_create_payments")

    assert [line for _, line in forward(m)] == [6, 12]
    assert m.rollback.line == 15
    assert rollback(m) == [
        ("DROP INDEX IF EXISTS idx_payments_invoice", 17),
        ("DROP TABLE IF EXISTS payments", 18),
    ]
    assert m.rollback.notes == (
        "(apply manually to reverse this migration)",
        "WARNING: deletes every payment. Back up payments before rollback.",
    )
    assert problems(m) == []  # the SELECT under -- Notes: is not rollback SQL


def test_a_sentence_heading_with_a_trailing_comment_and_an_inline_verify() -> None:
    m = read(BILLING, "006_add_invoices_due_date")

    assert [line for _, line in forward(m)] == [6, 7]
    assert rollback(m) == [("ALTER TABLE invoices DROP COLUMN IF EXISTS due_on", 10)]
    assert m.rollback.notes == ("derived dates: no data is lost",)
    assert problems(m) == []


@pytest.mark.parametrize(
    ("name", "script", "sql"),
    [
        ("007_create_plans", "007_create_plans_rollback.sql", ("DROP TABLE IF EXISTS plans", 4)),
        (
            "008_add_accounts_plan_fk",
            "rollback_008_add_accounts_plan_fk.sql",
            ("ALTER TABLE accounts DROP CONSTRAINT IF EXISTS accounts_plan_fk", 2),
        ),
        (
            "010_create_refund_function",
            "010_create_refund_function.down.sql",
            ("DROP FUNCTION IF EXISTS refund_payment(bigint)", 2),
        ),
    ],
)
def test_a_rollback_script_named_after_its_migration_is_its_rollback(
    name: str, script: str, sql: tuple[str, int]
) -> None:
    m = read(BILLING, name)

    assert (m.rollback.source, m.rollback.path) == ("sibling-file", BILLING / script)
    assert rollback(m) == [sql]
    assert m.rollback.text == (BILLING / script).read_text()
    assert problems(m) == []


def test_a_header_remark_pointing_at_the_script_yields_to_it() -> None:
    m = read(BILLING, "007_create_plans")

    assert [line for _, line in forward(m)] == [7, 12]
    assert m.rollback.notes == (
        "ROLLBACK for 007_create_plans.sql",
        "WARNING: deletes the plans table. Back up plans before rollback.",
    )


def test_a_banner_heading_with_a_qualifier_and_a_numbered_lowercase_one() -> None:
    view = read(BILLING, "009_create_invoice_totals_view")
    country = read(BILLING, "011_add_accounts_country")

    assert rollback(view) == [("DROP VIEW IF EXISTS invoice_totals", 12)]
    assert view.rollback.notes == ("(if needed)",)
    assert rollback(country) == [("ALTER TABLE accounts DROP COLUMN IF EXISTS country", 9)]
    assert country.rollback.notes[0] == "(only if no account has a country yet…)"


def test_markers_in_a_function_body_are_neither_headings_nor_rollback() -> None:
    m = read(BILLING, "010_create_refund_function")

    assert [line for _, line in forward(m)] == [7]
    assert "-- Rollback: the caller's transaction" in m.statements[0].sql
    assert "-- Verify: the refund is negative" in m.statements[0].sql


def test_a_rollback_script_named_after_no_migration_is_an_orphan() -> None:
    names = sorted(p.name for p in BILLING.iterdir())

    assert orphan_rollback_files(names) == ["rollback_2023_cleanup.sql"]
    assert orphans_in(BILLING) == [BILLING / "rollback_2023_cleanup.sql"]


def test_lint_reports_the_orphan_and_the_folder_is_otherwise_runnable() -> None:
    report = lint_entries(list(FORMAT.entries(BILLING)))

    orphans = [f for f in report.findings if f.rule == "orphan-rollback"]
    assert [(f.file.name, f.line, f.severity.value) for f in orphans] == [
        ("rollback_2023_cleanup.sql", 1, "error")
    ]
    assert "no migration in billing/ is named after it" in orphans[0].message
    for entry in FORMAT.entries(BILLING):
        assert refusals(FORMAT.read(entry), forward=True) == []


REFUSED_CASES = {
    "101_create_ledger": ("rollback-double-comment", 11),
    "102_add_ledger_index": ("rollback-outside-section", 13),
    "103_add_ledger_memo": ("rollback-outside-section", 5),
    "104_purge_test_ledger_rows": ("rollback-unparseable", 12),
}


@pytest.mark.parametrize(("name", "problem"), REFUSED_CASES.items(), ids=REFUSED_CASES.keys())
def test_what_must_not_run_is_a_problem_with_its_line_that_every_command_refuses(
    name: str, problem: tuple[str, int]
) -> None:
    m = read(REFUSED, name)

    assert problems(m) == [problem]
    for forward_run in (True, False):
        with pytest.raises(MalformedMigrationError) as caught:
            require_runnable(m, forward=forward_run)
        assert str(caught.value).startswith(f"{m.path}:{problem[1]}: {problem[0]}: ")
        assert "\n" not in str(caught.value)


def test_the_refused_files_keep_their_forward_sql_and_the_rest_of_their_rollback() -> None:
    ledger = read(REFUSED, "101_create_ledger")
    memo = read(REFUSED, "103_add_ledger_memo")
    purge = read(REFUSED, "104_purge_test_ledger_rows")

    assert [line for _, line in forward(ledger)] == [6, 7]
    assert rollback(ledger) == [("DROP TABLE IF EXISTS ledger_2026", 10)]
    assert rollback(memo) == [("ALTER TABLE ledger_2026 DROP COLUMN IF EXISTS memo CASCADE", 10)]
    assert "ALTER TABLE ledger_2026 DROP COLUMN memo" in memo.all_problems[0].message
    assert rollback(purge) == [("INSERT INTO ledger_2026 SELECT * FROM ledger_test", 11)]
