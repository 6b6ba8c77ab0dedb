"""The command line: exact output and exit codes for new, lint and show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backout.errors import ExitCode
from tests.runner import run

BANNER = "-- " + "=" * 76

JOBS = f"""\
-- Migration: 001_create_jobs.sql
-- Purpose: Create the jobs queue
-- Phase: 1
-- Checklist: 1.1

CREATE TABLE jobs (id bigserial PRIMARY KEY, payload jsonb);

{BANNER}
-- ROLLBACK
{BANNER}
-- To rollback this migration:
--   DROP TABLE IF EXISTS jobs CASCADE;
--
-- WARNING: This will delete all job data. Backup before rollback.
"""

INDEX = f"""\
-- Migration: 002_add_jobs_index.sql
-- Purpose: Index jobs by payload kind
-- Phase: 1
-- Checklist: 1.2
-- backout:ignore-file index-not-concurrent
CREATE INDEX idx_jobs_kind ON jobs ((payload->>'kind'));

{BANNER}
-- ROLLBACK
{BANNER}
-- To rollback this migration:
--   DROP INDEX IF EXISTS idx_jobs_kind;
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with two clean migrations; the working directory is its root."""
    (tmp_path / "pyproject.toml").write_text('[tool.backout]\nmigrations = ["migrations"]\n')
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_create_jobs.sql").write_text(JOBS)
    (folder / "002_add_jobs_index.sql").write_text(INDEX)
    monkeypatch.chdir(tmp_path)
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_TEMPLATES"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_lint_of_clean_migrations_exits_0(project: Path) -> None:
    result = run("lint")

    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "No problems found in 2 files.\n",
        "",
    )


def test_new_writes_the_next_version_and_prints_its_path(project: Path) -> None:
    result = run("new", "Add widgets")

    assert (result.exit_code, result.stdout) == (0, "migrations/003_add_widgets.sql\n")
    text = (project / "migrations/003_add_widgets.sql").read_text()
    assert text.startswith(
        "-- Migration: 003_add_widgets.sql\n-- Purpose: Add widgets\n-- Phase: TODO\n"
        "-- Checklist: TODO\n"
    )
    assert f"{BANNER}\n-- ROLLBACK\n{BANNER}\n-- To rollback this migration:\n" in text


def test_new_with_json_prints_path_version_and_name(project: Path) -> None:
    result = run("new", "add widgets", "--phase", "2", "--checklist", "2.4", "--json")

    assert json.loads(result.stdout) == {
        "path": "migrations/003_add_widgets.sql",
        "version": "003",
        "name": "003_add_widgets",
    }


def test_new_refuses_a_description_that_cannot_be_snake_case(project: Path) -> None:
    result = run("new", "!!!")

    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == (
        "backout: error: description '!!!' cannot be made snake_case; use letters and digits, "
        'e.g. backout new "add widgets"\n'
    )
    assert sorted(p.name for p in (project / "migrations").iterdir()) == [
        "001_create_jobs.sql",
        "002_add_jobs_index.sql",
    ]


def test_a_new_migration_lints_as_unfinished_until_filled_in(project: Path) -> None:
    run("new", "add widgets")

    result = run("lint", "--format", "json")

    findings = json.loads(result.stdout)["findings"]
    assert result.exit_code == ExitCode.PROBLEMS
    assert [(f["rule"], f["severity"], f["line"]) for f in findings] == [
        ("forward-empty", "error", 1),
        ("header-placeholder", "warning", 3),
        ("header-placeholder", "warning", 4),
        ("rollback-missing", "error", 15),
    ]
    assert {f["file"] for f in findings} == {"migrations/003_add_widgets.sql"}


def test_a_filled_in_migration_lints_clean_and_shows_its_exact_rollback(project: Path) -> None:
    path = project / run("new", "add widgets", "--phase", "2", "--checklist", "2.4").stdout.strip()
    text = path.read_text()
    text = text.replace(
        "-- Write the migration's SQL below this line, each statement ending with ';'.\n",
        "CREATE TABLE widgets (id serial PRIMARY KEY, name text NOT NULL);\n",
    )
    text += "--   DROP TABLE IF EXISTS widgets;\n--\n-- WARNING: deletes every widget.\n"
    path.write_text(text)

    lint = run("lint")
    show = run("show", "003", "--json")

    assert (lint.exit_code, lint.stdout) == (0, "No problems found in 3 files.\n")
    shown = json.loads(show.stdout)
    assert shown["rollback"] == {
        "statements": [{"sql": "DROP TABLE IF EXISTS widgets", "line": 19}],
        "notes": ["WARNING: deletes every widget."],
        "source": "comment-block",
    }


def test_lint_text_groups_findings_by_file_with_line_severity_rule_and_fix(project: Path) -> None:
    bad = project / "migrations/003_drop_payload.sql"
    bad.write_text(
        "-- Migration: 003_drop_payload.sql\n-- Purpose: x\n-- Phase: 1\n-- Checklist: 1\n\n"
        "ALTER TABLE jobs DROP COLUMN payload;\n\n"
        "-- ROLLBACK\n--   ALTER TABLE jobs ADD COLUMN payload jsonb;\n"
    )

    result = run("lint")

    assert result.exit_code == ExitCode.PROBLEMS
    assert result.stdout == (
        "migrations/003_drop_payload.sql\n"
        "     6  error    forward-data-loss: DROP COLUMN jobs.payload changes or destroys existing "
        "data and the file documents no data-preservation strategy; add a comment such as "
        "`-- Data preservation: <backup, copy table or reversible backfill>` (strategy rule 3)\n"
        "\n"
        "Found 1 error and 0 warnings in 3 files.\n"
    )


def test_lint_github_format_prints_annotations(project: Path) -> None:
    (project / "migrations/003_x.sql").write_text(JOBS.replace("001_create_jobs", "003_x"))

    result = run("lint", "--format", "github", "migrations/003_x.sql")

    assert result.exit_code == 0
    assert result.stdout == ""


def test_lint_github_format_escapes_properties(project: Path) -> None:
    (project / "migrations/003_bad name.sql").write_text(JOBS.replace("001_create_jobs", "003"))

    result = run("lint", "--format", "github", "migrations/003_bad name.sql")

    assert result.stdout.splitlines()[1].startswith(
        "::error file=migrations/003_bad name.sql,line=1,title=name-format::003_bad name.sql does"
    )


def test_lint_reports_a_file_that_is_not_utf8_and_goes_on(project: Path) -> None:
    (project / "migrations/003_latin1.sql").write_bytes(b"-- caf\xe9\nSELECT 1;\n")

    result = run("lint", "--json")

    findings = json.loads(result.stdout)["findings"]
    assert result.exit_code == ExitCode.PROBLEMS
    assert findings == [
        {
            "rule": "unreadable",
            "severity": "error",
            "file": "migrations/003_latin1.sql",
            "line": 1,
            "message": "is not UTF-8 text; save it as UTF-8",
        }
    ]


def test_show_prints_the_exact_rollback_sql_and_notes(project: Path) -> None:
    result = run("show", "001")

    assert result.exit_code == 0
    assert (
        "Rollback SQL (1 statement; comment-block in this file at line 9; exactly what would run, "
        "in order)\n"
        "  line 12  [destroys-data: DROP TABLE jobs CASCADE]\n"
        "    DROP TABLE IF EXISTS jobs CASCADE;\n"
        "\n"
        "Rollback notes\n"
        "  ! WARNING: This will delete all job data. Backup before rollback.\n"
    ) in result.stdout


def test_show_json_has_the_documented_keys(project: Path) -> None:
    shown = json.loads(run("show", "001_create_jobs.sql", "--json").stdout)

    assert shown["version"] == "001"
    assert shown["name"] == "001_create_jobs"
    assert shown["path"] == "migrations/001_create_jobs.sql"
    assert shown["header"]["Purpose"] == "Create the jobs queue"
    assert shown["statements"] == [
        {"sql": "CREATE TABLE jobs (id bigserial PRIMARY KEY, payload jsonb)", "line": 6}
    ]
    assert shown["rollback"]["statements"] == [
        {"sql": "DROP TABLE IF EXISTS jobs CASCADE", "line": 12}
    ]
    assert len(shown["checksum"]) == 64
    assert shown["flags"] == [
        {
            "flag": "destroys-data",
            "section": "rollback",
            "line": 12,
            "detail": "DROP TABLE jobs CASCADE",
        }
    ]


def test_unknown_migration_is_one_line_naming_close_matches(project: Path) -> None:
    result = run("show", "001_create_job")

    assert (result.exit_code, result.stdout) == (ExitCode.USAGE, "")
    assert result.stderr == (
        "backout: error: unknown migration '001_create_job'; did you mean 001_create_jobs?\n"
    )


def test_ambiguous_version_across_folders_lists_the_candidates(project: Path) -> None:
    other = project / "idempotency"
    other.mkdir()
    (other / "001_create_keys.sql").write_text(JOBS)
    (project / "pyproject.toml").write_text(
        '[tool.backout]\nmigrations = ["migrations", "idempotency"]\n'
    )

    result = run("show", "001")

    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == (
        "backout: error: migration '001' is ambiguous: it matches "
        "migrations/001_create_jobs.sql, idempotency/001_create_keys.sql; name it by path, "
        "e.g. `migrations/001_create_jobs.sql`\n"
    )
    assert run("show", "idempotency/001", "--json").exit_code == 0


def test_unknown_config_key_is_a_usage_error_suggesting_the_key(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.backout]\nmigration = ["migrations"]\n')

    result = run("lint")

    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == (
        f"backout: error: {project / 'pyproject.toml'}: unknown key 'migration' in "
        "[tool.backout]; did you mean 'migrations'?\n"
    )


def test_a_bad_option_is_a_usage_error(project: Path) -> None:
    result = run("lint", "--format", "xml")

    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == (
        "backout: error: invalid value for '--format' / '-f': 'xml' is not one of 'text', "
        "'json', 'github'; see backout lint --help\n"
    )


def test_linting_one_file_checks_its_version_against_the_whole_folder(project: Path) -> None:
    (project / "migrations/004_gap.sql").write_text(JOBS.replace("001_create_jobs", "004_gap"))

    one = run("lint", "--json", "migrations/001_create_jobs.sql")
    gap = run("lint", "--json", "migrations/004_gap.sql")

    assert json.loads(one.stdout)["findings"] == []
    assert [f["rule"] for f in json.loads(gap.stdout)["findings"]] == ["version-gap"]
