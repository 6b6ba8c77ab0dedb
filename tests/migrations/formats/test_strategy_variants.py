"""The strategy format's real variants, one at a time (item 3 of issue 11): the header never
opens a rollback section, qualified headings, headings that end a section, doubly commented
lines, remarks after a statement's ``;``, rollback scripts beside the migration."""

from __future__ import annotations

from pathlib import Path

import pytest

from backout.migrations.file import (
    MigrationFile,
    is_migration_name,
    parse_migration,
    read_migration,
)
from backout.migrations.formats.strategy import StrategyFormat
from backout.migrations.lint import lint_entries
from backout.migrations.rollback_source import is_rollback_file_name, rollback_file_names

FORWARD = "CREATE TABLE jobs (id int);\n\n"
HEADER = "-- Migration: 001_x.sql\n-- Purpose: p\n-- Phase: 1\n-- Checklist: c\n"
BANNER = "-- " + "=" * 76


def parse(text: str, name: str = "001_x.sql", **siblings: str) -> MigrationFile:
    return parse_migration(Path("/m") / name, text.encode(), siblings=siblings)


def forward(m: MigrationFile) -> list[tuple[str, int]]:
    return [(s.sql, s.line) for s in m.statements]


def rollback(m: MigrationFile) -> list[tuple[str, int]]:
    return [(s.sql, s.line) for s in m.rollback.statements]


def problems(m: MigrationFile) -> list[tuple[str, int]]:
    return [(p.code, p.line) for p in m.all_problems]


# -- qualified headings -------------------------------------------------------------------------

HEADINGS = [
    "-- ROLLBACK (manual):",
    "-- ROLLBACK (manual, if needed):",
    "-- Rollback SQL (if needed):",
    "-- Rollback (in case of failure):",
    "-- DOWN / ROLLBACK (apply manually to reverse this migration)",
    "-- Rollback (only if the backfill has not run):",
    "-- Rollback (only if …):",
    "-- If this migration causes issues, rollback with:",
    "-- If this migration causes issues, rollback with",
    "-- IF THIS MIGRATION CAUSES ISSUES, ROLL BACK WITH:",
    "-- if needed, roll back with:",
    "-- In case of failure, run the following to roll back:",
    "-- To roll back this migration, run:",
    "-- rollback (manual)",
    "--ROLLBACK(manual):",
    "--   Rollback   SQL   (if needed)  :",
    "-- ==== ROLLBACK (manual) ====",
    "-- ## Rollback plan (manual) ##",
    "-- [ROLLBACK]",
    "-- 5. Rollback",
    "-- Undo:",
    "-- Revert:",
    "-- Rollback & Down:",
    f"{BANNER}\n-- ROLLBACK (manual, if needed)\n{BANNER}",
    "-- " + "-" * 40 + "\n-- Down / Rollback\n-- " + "-" * 40,
]


@pytest.mark.parametrize("heading", HEADINGS)
def test_every_heading_variant_opens_the_section(heading: str) -> None:
    m = parse(FORWARD + heading + "\n--   DROP TABLE jobs;\n")
    line = 3 + heading.count("\n") + 1

    assert forward(m) == [("CREATE TABLE jobs (id int)", 1)]
    assert rollback(m) == [("DROP TABLE jobs", line)]
    assert m.rollback.source == "comment-block"
    assert problems(m) == []


@pytest.mark.parametrize(
    ("heading", "note"),
    [
        ("-- ROLLBACK (manual, if needed):", "(manual, if needed)"),
        ("-- Rollback (only if the backfill failed):", "(only if the backfill failed)"),
        ("-- ROLLBACK", None),
    ],
)
def test_a_heading_qualifier_is_the_first_note(heading: str, note: str | None) -> None:
    m = parse(FORWARD + heading + "\n--   DROP TABLE jobs;\n-- WARNING: deletes jobs.\n")

    assert m.rollback.notes == ((note,) if note else ()) + ("WARNING: deletes jobs.",)


def test_an_inline_statement_after_a_qualified_heading_is_read() -> None:
    m = parse(FORWARD + "-- ROLLBACK (manual): DROP TABLE jobs;\n")

    assert rollback(m) == [("DROP TABLE jobs", 3)]
    assert m.rollback.notes == ("(manual)",)


@pytest.mark.parametrize(
    "comment",
    [
        "-- Rolling back is not possible once the workers run",
        "-- The down side: a table lock",
        "-- Rollback happens automatically in a transaction",
        "-- If the lock times out, retry later",
    ],
)
def test_prose_mentioning_the_words_is_not_a_heading(comment: str) -> None:
    m = parse(FORWARD + comment + "\nCREATE INDEX i ON jobs (id);\n")

    assert m.rollback.found is False
    assert [line for _, line in forward(m)] == [1, 4]


# -- the header is never a rollback section ----------------------------------------------------


def test_the_issue_header_keeps_every_forward_statement_and_its_remark_is_a_note() -> None:
    text = HEADER + "-- Rollback: not needed for the index\n\nCREATE INDEX i ON jobs (id);\n"

    m = parse(text)

    assert forward(m) == [("CREATE INDEX i ON jobs (id)", 7)]
    assert (m.rollback.source, m.rollback.line, rollback(m)) == ("remark", 5, [])
    assert m.rollback.notes == ("not needed for the index",)
    assert problems(m) == []


def test_a_header_rollback_that_parses_is_a_one_statement_rollback() -> None:
    m = parse(HEADER + "-- Rollback: DROP TABLE jobs;\n\nCREATE TABLE jobs (id int);\n")

    assert forward(m) == [("CREATE TABLE jobs (id int)", 7)]
    assert rollback(m) == [("DROP TABLE jobs", 5)]
    assert m.rollback.text == "-- Rollback: DROP TABLE jobs;"


def test_a_header_rollback_without_a_blank_line_before_the_sql() -> None:
    m = parse(
        "-- Rollback: DROP TABLE jobs;\nCREATE TABLE jobs (id int);\nCREATE INDEX i ON jobs (id);\n"
    )

    assert [line for _, line in forward(m)] == [2, 3]
    assert rollback(m) == [("DROP TABLE jobs", 1)]


def test_a_bare_header_rollback_takes_its_indented_lines_only() -> None:
    text = (
        HEADER
        + "-- Rollback:\n--   DROP INDEX i;\n--   DROP TABLE jobs;\n"
        + "-- Old definition:\n-- CREATE INDEX i ON jobs (id);\n\n"
        + "CREATE TABLE jobs (id int);\nCREATE INDEX i ON jobs (id, id);\n"
    )

    m = parse(text)

    assert [line for _, line in forward(m)] == [11, 12]
    assert rollback(m) == [("DROP INDEX i", 6), ("DROP TABLE jobs", 7)]
    assert problems(m) == []


@pytest.mark.parametrize(
    "after",
    [
        "--\n-- ALTER TABLE jobs ADD COLUMN note text;\n",
        "-- ALTER TABLE jobs ADD COLUMN note text;\n",
        "-- Previously:\n--   ALTER TABLE jobs ADD COLUMN note text;\n",
    ],
)
def test_commented_out_forward_sql_in_a_header_never_becomes_rollback(after: str) -> None:
    text = HEADER + "-- Rollback: ALTER TABLE jobs DROP COLUMN note;\n" + after
    text += "ALTER TABLE jobs ADD COLUMN note text NOT NULL DEFAULT '';\n"

    m = parse(text)

    assert rollback(m) == [("ALTER TABLE jobs DROP COLUMN note", 5)]
    assert forward(m) == [
        ("ALTER TABLE jobs ADD COLUMN note text NOT NULL DEFAULT ''", 6 + after.count("\n"))
    ]


def test_a_rollback_block_written_at_the_top_before_the_sql_is_a_remark() -> None:
    text = (
        HEADER
        + f"\n{BANNER}\n-- ROLLBACK\n{BANNER}\n-- To rollback this migration:\n"
        + "--   DROP TABLE jobs;\n\nCREATE TABLE jobs (id int);\n"
    )

    m = parse(text)

    assert forward(m) == [("CREATE TABLE jobs (id int)", 12)]
    assert (m.rollback.source, m.rollback.line) == ("remark", 7)
    assert rollback(m) == [("DROP TABLE jobs", 10)]
    assert problems(m) == []


def test_a_header_after_a_psql_meta_command_is_still_a_header() -> None:
    text = (
        "\\set ON_ERROR_STOP on\n-- ROLLBACK:\n--   DROP TABLE jobs;\nCREATE TABLE jobs (id int);\n"
    )

    m = parse(text)

    assert forward(m) == [("CREATE TABLE jobs (id int)", 4)]
    assert rollback(m) == [("DROP TABLE jobs", 3)]
    assert problems(m) == [("psql-meta-command", 1)]


def test_a_header_rollback_that_does_not_parse_is_refused_with_its_line() -> None:
    m = parse(HEADER + "-- Rollback: DROP TABEL jobs;\n\nCREATE TABLE jobs (id int);\n")

    assert forward(m) == [("CREATE TABLE jobs (id int)", 7)]
    assert problems(m) == [("rollback-unparseable", 5)]


def test_a_remark_with_text_followed_by_sql_in_the_body_never_swallows_it() -> None:
    text = FORWARD + "-- Rollback: DROP INDEX i;\nCREATE INDEX i ON jobs (id);\n"

    m = parse(text)

    assert [line for _, line in forward(m)] == [1, 4]
    assert rollback(m) == [("DROP INDEX i", 3)]
    assert problems(m) == []


def test_a_sentence_heading_followed_by_sql_is_a_remark_not_a_section() -> None:
    text = FORWARD + "-- If the backfill fails, rollback with\nCREATE INDEX i ON jobs (id);\n"

    m = parse(text)

    assert [line for _, line in forward(m)] == [1, 4]
    assert m.rollback.statements == ()
    assert problems(m) == []


def test_a_header_rollback_remark_and_a_section_that_agree() -> None:
    text = (
        HEADER
        + "-- Rollback: DROP TABLE jobs;\n\n"
        + FORWARD
        + "-- ROLLBACK\n--   DROP TABLE jobs;\n"
    )

    m = parse(text)

    assert (m.rollback.source, rollback(m)) == ("comment-block", [("DROP TABLE jobs", 10)])
    assert problems(m) == []


def test_rollback_sql_scattered_over_remarks_is_refused_on_each_stray_line() -> None:
    text = (
        "CREATE TABLE a (id int);\n-- Rollback: DROP TABLE a;\n"
        "CREATE TABLE b (id int);\n-- Rollback: DROP TABLE b;\n"
    )

    m = parse(text)

    assert rollback(m) == [("DROP TABLE b", 4)]
    assert problems(m) == [("rollback-outside-section", 2)]
    assert "`DROP TABLE a`" in m.all_problems[0].message


# -- what ends a rollback section ---------------------------------------------------------------

ENDINGS = [
    "-- VERIFICATION QUERIES",
    "-- Verification queries:",
    "-- Verify:",
    "-- Verify: SELECT count(*) FROM jobs;",
    "-- Verification:",
    "-- verify rollback:",
    "-- Rollback verification:",
    "-- Post-deploy checks",
    "-- Post-deployment checks:",
    "-- Sanity checks",
    "-- Smoke tests:",
    "-- Notes:",
    "-- NOTES",
    "-- References",
    f"{BANNER}\n-- VERIFICATION\n{BANNER}",
    f"{BANNER}\n-- Expected results\n{BANNER}",
    f"{BANNER}\n-- MONITORING AFTER DEPLOY",
    "-- ==== Checks ====",
    f"-- {'-' * 20}\n-- Data checks\n-- {'-' * 20}",
]


@pytest.mark.parametrize("ending", ENDINGS)
def test_a_verification_block_or_another_heading_ends_the_section(ending: str) -> None:
    text = FORWARD + "-- ROLLBACK\n--   ALTER TABLE jobs DROP COLUMN note;\n\n"
    text += (
        ending
        + "\n--   SELECT note FROM jobs;\n--   SELECT count(*) FROM jobs WHERE note IS NULL;\n"
    )

    m = parse(text)

    assert rollback(m) == [("ALTER TABLE jobs DROP COLUMN note", 4)]
    assert problems(m) == []
    assert m.rollback.text == "-- ROLLBACK\n--   ALTER TABLE jobs DROP COLUMN note;\n"


@pytest.mark.parametrize(
    "line",
    [
        "-- WARNING: this deletes the notes.",
        "-- Note: run it when the workers are stopped.",
        "-- Check the logs afterwards.",
        f"{BANNER}\n-- Step 2: the column",
        f"{BANNER}\n-- WARNING",
        "-- Down:",
        "-- To rollback this migration:",
    ],
)
def test_notes_steps_and_sub_headings_do_not_end_the_section(line: str) -> None:
    text = (
        FORWARD
        + "-- ROLLBACK\n--   DROP INDEX i;\n"
        + line
        + "\n--   ALTER TABLE jobs DROP COLUMN note;\n"
    )

    m = parse(text)

    assert [sql for sql, _ in rollback(m)] == ["DROP INDEX i", "ALTER TABLE jobs DROP COLUMN note"]


def test_rollback_sql_after_a_heading_that_ends_the_section_is_refused() -> None:
    text = (
        FORWARD
        + "-- ROLLBACK\n--   DROP INDEX i;\n-- Notes:\n--   DROP TABLE jobs;\n--   SELECT 1;\n"
    )

    m = parse(text)

    assert rollback(m) == [("DROP INDEX i", 4)]
    assert problems(m) == [("rollback-outside-section", 6)]
    assert "after the heading at line 5" in m.all_problems[0].message


def test_analyze_and_explain_after_the_section_are_checks_not_stray_sql() -> None:
    text = FORWARD + "-- ROLLBACK\n--   DROP INDEX i;\n-- Post-deploy checks\n"
    text += "--   ANALYZE jobs;\n--   EXPLAIN SELECT * FROM jobs;\n--   SHOW work_mem;\n"

    assert problems(parse(text)) == []


# -- lines commented twice ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("-- -- (repeat for each table)", [("rollback-double-comment", 5)]),
        ("--   -- DROP TABLE jobs_2025;", [("rollback-double-comment", 5)]),
        ("---- DROP TABLE jobs_2025;", [("rollback-double-comment", 5)]),
        ("-- --", []),
        ("-- -- ======", []),
        ("--   DROP TABLE jobs;  -- and its rows", []),
    ],
)
def test_a_doubly_commented_line_in_the_section_is_a_problem_with_its_line(
    line: str, expected: list[tuple[str, int]]
) -> None:
    text = FORWARD + "-- ROLLBACK\n--   DROP INDEX i;\n" + line + "\n"

    assert problems(parse(text)) == expected


def test_a_doubly_commented_line_outside_the_section_is_fine() -> None:
    text = "-- -- old header line\nCREATE TABLE jobs (id int);\n-- -- DROP TABLE x;\n"
    text += "-- ROLLBACK\n--   DROP TABLE jobs;\n-- Notes:\n-- -- nothing\n"

    assert problems(parse(text)) == []


def test_a_comment_inside_a_block_comment_section_is_not_doubly_commented() -> None:
    text = FORWARD + "-- ROLLBACK\n/*\n-- the table goes last\nDROP TABLE jobs;\n*/\n"

    m = parse(text)

    assert rollback(m) == [("DROP TABLE jobs", 6)]
    assert problems(m) == []


# -- remarks after a statement's ';' ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "note"),
    [
        ("DROP TABLE jobs;  (no data to unwind)", "(no data to unwind)"),
        ("DROP TABLE jobs; [optional]", "optional"),
        ("DROP TABLE jobs;  -- no data to unwind", "no data to unwind"),
        ("DROP TABLE jobs; # no data to unwind", "no data to unwind"),
        ("DROP TABLE jobs; — no data to unwind", "no data to unwind"),
        ("DROP TABLE jobs;  (no data; nothing to unwind)", "(no data; nothing to unwind)"),
    ],
)
def test_a_remark_after_the_semicolon_is_a_note(line: str, note: str) -> None:
    for heading in ("-- Rollback: " + line, "-- ROLLBACK\n--   " + line):
        m = parse(FORWARD + heading + "\n")

        assert [sql for sql, _ in rollback(m)] == ["DROP TABLE jobs"]
        assert m.rollback.notes == (note,)
        assert problems(m) == []


def test_a_remark_after_several_statements_and_a_multi_line_statement() -> None:
    text = FORWARD + "-- ROLLBACK\n--   DROP INDEX i; DROP TABLE jobs;  (both empty)\n"
    text += "--   DELETE FROM jobs\n--    WHERE id = 1;  (the seed row)\n"

    m = parse(text)

    assert rollback(m) == [
        ("DROP INDEX i", 4),
        ("DROP TABLE jobs", 4),
        ("DELETE FROM jobs\n WHERE id = 1", 5),
    ]
    assert m.rollback.notes == ("(both empty)", "(the seed row)")


@pytest.mark.parametrize(
    "line",
    [
        "DELETE FROM jobs; WHERE id = 1",
        "UPDATE jobs SET id = 0;  where id is null",
        "DROP TABLE jobs; then vacuum",
    ],
)
def test_plain_words_after_the_semicolon_are_refused_never_run_without_them(line: str) -> None:
    m = parse(FORWARD + "-- ROLLBACK\n--   " + line + "\n")

    assert m.rollback.statements == ()
    assert [code for code, _ in problems(m)] == ["rollback-unparseable"]


def test_a_semicolon_in_a_string_is_not_a_remark_boundary() -> None:
    m = parse(FORWARD + "-- ROLLBACK\n--   UPDATE jobs SET note = 'a; (b)' WHERE id = 1;\n")

    assert rollback(m) == [("UPDATE jobs SET note = 'a; (b)' WHERE id = 1", 4)]
    assert m.rollback.notes == ()


# -- rollback scripts beside the migration ------------------------------------------------------


def test_rollback_file_names_are_tried_in_a_fixed_order() -> None:
    assert rollback_file_names("007_add_x.sql") == (
        "007_add_x.rollback.sql",
        "007_add_x.down.sql",
        "007_add_x_rollback.sql",
        "007_add_x-rollback.sql",
        "rollback_007_add_x.sql",
        "rollback-007_add_x.sql",
        "007.rollback.sql",
        "007.down.sql",
        "007_rollback.sql",
        "007-rollback.sql",
        "rollback_007.sql",
        "rollback-007.sql",
    )


@pytest.mark.parametrize(
    ("name", "rollback_script"),
    [
        ("007_add_x.sql", False),
        ("007_add_x.rollback.sql", True),
        ("007_add_x.down.sql", True),
        ("007_add_x_rollback.sql", True),
        ("007_add_x-ROLLBACK.sql", True),
        ("rollback_007_add_x.sql", True),
        ("Rollback-007.sql", True),
        ("012_scale_down.sql", False),
        ("013_add_rollback_log.sql", False),
        ("014_rollbacks.sql", False),
        ("notes.txt", False),
    ],
)
def test_which_names_are_rollback_scripts(name: str, rollback_script: bool) -> None:
    assert is_rollback_file_name(name) is rollback_script
    assert is_migration_name(name) is (name.endswith(".sql") and not rollback_script)


def test_a_script_named_after_the_version_alone_is_attached(tmp_path: Path) -> None:
    (tmp_path / "007_add_x.sql").write_text("CREATE TABLE x (id int);\n")
    (tmp_path / "007_rollback.sql").write_text("DROP TABLE x;\n")

    (entry,) = StrategyFormat().entries(tmp_path)
    m = StrategyFormat().read(entry)

    assert entry.others == (tmp_path / "007_rollback.sql",)
    assert (m.rollback.path, rollback(m)) == (tmp_path / "007_rollback.sql", [("DROP TABLE x", 1)])
    assert read_migration(tmp_path / "007_add_x.sql").rollback == m.rollback


def test_a_section_with_only_a_pointer_yields_to_the_script() -> None:
    m = parse(
        FORWARD + "-- ROLLBACK: see 001_x_rollback.sql\n",
        **{"001_x_rollback.sql": "DROP TABLE jobs;\n"},
    )

    assert (m.rollback.source, rollback(m)) == ("sibling-file", [("DROP TABLE jobs", 1)])
    assert problems(m) == []


def test_a_script_the_migration_does_not_use_is_reported_on_the_migration() -> None:
    siblings = {"001_x_rollback.sql": "DROP TABLE jobs;\n", "rollback_001_x.sql": "SELECT 1;\n"}

    in_file = parse(FORWARD + "-- ROLLBACK\n--   DROP TABLE jobs;\n", **siblings)
    by_file = parse(FORWARD, **siblings)

    assert problems(in_file) == [("orphan-rollback", 3), ("orphan-rollback", 3)]
    assert "the ROLLBACK section at line 3" in in_file.all_problems[0].message
    assert problems(by_file) == [("orphan-rollback", 1)]
    assert by_file.all_problems[0].message.startswith(
        "rollback_001_x.sql is a rollback file for this migration, but backout runs "
        "001_x_rollback.sql"
    )


def test_lint_reports_an_orphan_script_with_the_folder_or_any_file_of_it(tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text("SELECT 1;\n")
    (tmp_path / "002_b.sql").write_text("SELECT 1;\n")
    (tmp_path / "003_gone_rollback.sql").write_text("DROP TABLE gone;\n")
    entries = list(StrategyFormat().entries(tmp_path))

    whole = lint_entries(entries)
    one = lint_entries(entries[:1], entries[1:])

    for report in (whole, one):
        orphans = [(f.file.name, f.line) for f in report.findings if f.rule == "orphan-rollback"]
        assert orphans == [("003_gone_rollback.sql", 1)]


def test_a_script_sharing_its_migration_version_is_no_duplicate_version(tmp_path: Path) -> None:
    (tmp_path / "007_add_x.sql").write_text("CREATE TABLE x (id int);\n")
    (tmp_path / "007_add_x_rollback.sql").write_text("-- ROLLBACK\nDROP TABLE x;\n")
    entries = list(StrategyFormat().entries(tmp_path))

    report = lint_entries(entries)

    assert [e.name for e in entries] == ["007_add_x"]
    assert [f.rule for f in report.findings if f.rule.startswith("duplicate")] == []
    assert [s.sql for s in StrategyFormat().read(entries[0]).rollback.statements] == [
        "DROP TABLE x"
    ]


def test_a_clause_commented_out_twice_inside_a_statement_is_reported_not_run() -> None:
    text = FORWARD + "-- ROLLBACK\n--   UPDATE jobs SET\n--     id = 1,\n--     -- note = NULL,\n"
    text += "--     id = 2;\n"

    m = parse(text)

    assert m.rollback.statements == ()
    assert ("rollback-double-comment", 6) in problems(m)


def test_sql_after_the_colon_of_an_ending_heading_is_checked_too() -> None:
    query = parse(FORWARD + "-- ROLLBACK\n--   DROP INDEX i;\n-- Verify: SELECT 1;\n")
    drop = parse(FORWARD + "-- ROLLBACK\n--   DROP INDEX i;\n-- Check: DROP TABLE jobs;\n")

    assert problems(query) == []
    assert problems(drop) == [("rollback-outside-section", 5)]
