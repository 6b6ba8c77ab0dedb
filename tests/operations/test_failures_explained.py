"""A failure says what and what next: PostgreSQL's DETAIL and HINT and a next step, in the dry
run's lines, in the runner's error and in the emergency's timeline; and the timeline counts the
rows a ``DROP TABLE`` destroys from the backup, since the server counts none for DDL.

Rolling back the sample 002 (``DROP TABLE events``) while 005 is applied fails: 005's
``impact_score_backfill_log`` has a foreign key to ``events``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings
from backout.database.connection import Target
from backout.database.runner import StatementFailedError
from backout.operations import emergency as procedure
from backout.operations.apply import apply
from backout.operations.rollback import rollback
from tests.sample_project import ME, rows, states, write

EVENTS = "SELECT count(*) FROM pg_class WHERE relname = 'events' AND relkind = 'r'"
DETAIL = "DETAIL: constraint impact_score_backfill_log_event_id_fkey on table "
HINT = "HINT: Use DROP ... CASCADE to drop the dependent objects too."
NEXT = "roll back the later migrations that depend on it first (`backout status` shows them)"
AUDIT = "SELECT action, outcome, sqlstate FROM backout_audit_event ORDER BY id"


DYNAMIC = "DO $$ BEGIN EXECUTE 'DROP TABLE events'; END $$;\n"
"""A rollback whose drop is dynamic SQL: the blast radius cannot see it, so it fails when it
runs (the way any failure it does not predict does)."""


def _dynamic(settings: Settings) -> Path:
    path = settings.root / "dynamic_rollback.sql"
    path.write_text(DYNAMIC)
    return path


def _timeline(settings: Settings) -> str:
    return next(settings.postmortems.glob("INC-*.md")).read_text()


def test_a_dry_run_names_the_dependants_the_hint_and_the_next_step(
    settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    apply(settings, target, ME)

    outcome = rollback(settings, target, ME, "002", dry_run=True)

    dropping = [line for line in outcome.done if line.startswith("FAILED")]
    assert len(dropping) == 2  # events, then markets (events was not dropped)
    assert "cannot drop table events because other objects depend on it" in dropping[0]
    assert DETAIL in dropping[0]
    assert HINT in dropping[0]
    assert NEXT in dropping[0]
    assert len(outcome.done) == 3  # every statement is still listed
    assert rows(conn, EVENTS) == [(1,)]
    assert states(settings, target)["002_create_core_schema"] == "applied"


def test_a_real_rollback_failure_says_detail_hint_and_next_and_changes_nothing(
    settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    apply(settings, target, ME)
    before = rows(conn, AUDIT)

    with pytest.raises(StatementFailedError) as caught:
        rollback(settings, target, ME, "002", rollback_file=_dynamic(settings))

    said = str(caught.value)
    assert caught.value.message.startswith("002_create_core_schema line ")
    assert "cannot drop table events" in said
    assert DETAIL in said
    assert HINT in said
    assert "nothing was changed" in said
    assert f"next: {NEXT}" in said
    assert "\n" not in said
    assert rows(conn, EVENTS) == [(1,)]
    assert states(settings, target)["002_create_core_schema"] == "applied"
    assert rows(conn, AUDIT)[len(before) :] == [("rollback", "failure", "2BP01")]


def test_the_emergency_timeline_keeps_detail_hint_and_next(
    settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    apply(settings, target, ME)
    request = procedure.Request(
        reference="002",
        reason="broken",
        no_git=True,
        rehearse=False,
        rollback_file=_dynamic(settings),
    )

    with pytest.raises(StatementFailedError):
        procedure.emergency(settings, target, ME, request)

    postmortem = " ".join(_timeline(settings).split())  # YAML folds long lines
    failure = postmortem[postmortem.index("rollback FAILED") :]
    assert DETAIL in failure
    assert HINT in failure
    assert NEXT in failure
    assert rows(conn, EVENTS) == [(1,)]
    assert states(settings, target)["002_create_core_schema"] == "applied"


NOTES = "CREATE TABLE notes (id int PRIMARY KEY, body text);\n"
THREE = "INSERT INTO notes VALUES (1, 'a'), (2, 'b'), (3, 'c');\n"


def test_the_timeline_counts_the_rows_a_drop_table_destroys_from_the_backup(
    settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    write(settings.root, "007_create_notes.sql", NOTES + THREE, "DROP TABLE notes;")
    apply(settings, target, ME)
    request = procedure.Request(reference="007", reason="broken", no_git=True, rehearse=False)

    result = procedure.emergency(settings, target, ME, request)

    assert result.backup is not None
    assert [i.rows for i in result.backup.items] == [3]
    timeline = _timeline(settings)
    assert ": DROP TABLE notes (drops 3 rows of public.notes, backed up," in timeline
    assert "no rows" not in timeline
    assert rows(conn, "SELECT to_regclass('notes') IS NULL") == [(True,)]


def test_the_timeline_says_rows_were_not_counted_when_the_backup_was_waived(
    settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    write(settings.root, "007_create_notes.sql", NOTES + THREE, "DROP TABLE notes;")
    apply(settings, target, ME)
    request = procedure.Request(
        reference="007",
        reason="broken",
        no_git=True,
        rehearse=False,
        no_backup=True,
        backup_waiver="test data only",
    )

    procedure.emergency(settings, target, ME, request)

    timeline = _timeline(settings)
    assert ": DROP TABLE notes (rows not counted: backup waived," in timeline
    assert "no rows" not in timeline
    assert rows(conn, "SELECT to_regclass('notes') IS NULL") == [(True,)]
