"""A dry run can never commit: it refuses transaction control itself, whatever it is given.

The commands refuse such sections before they get here (test_transaction_control.py); this is
the dry run's own guard, proven on a real server: nothing runs, the table and its rows stay.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from backout.errors import UsageError
from backout.migrations.statements import Statement, split
from backout.operations.dry_run import dry_run


def unchecked(sql: str, line: int) -> Statement:
    """A statement as a caller could build it, with no flag set."""
    return Statement(sql=sql, line=line, end_line=line)


@pytest.mark.parametrize(
    "control",
    [
        "COMMIT",
        "END",
        "COMMIT AND CHAIN",
        "ROLLBACK",
        "SAVEPOINT s",
        "PREPARE TRANSACTION 'x'",
        "SELECT 1; COMMIT",
    ],
)
def test_a_dry_run_given_transaction_control_runs_nothing(
    conn: psycopg.Connection[Any], control: str
) -> None:
    conn.execute("CREATE TABLE t (id int, d text); INSERT INTO t VALUES (1, 'kept')")
    statements = [*split("ALTER TABLE t DROP COLUMN d"), unchecked(control, 2)]

    with pytest.raises(UsageError, match=r"line 2: .*a dry run never runs it"):
        dry_run(conn, statements)

    assert conn.execute("SELECT d FROM t").fetchall() == [("kept",)]
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_dry_run_without_transaction_control_still_rolls_everything_back(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute("CREATE TABLE t (id int, d text); INSERT INTO t VALUES (1, 'kept')")

    lines = dry_run(conn, split("ALTER TABLE t DROP COLUMN d;\nDELETE FROM t;"))

    assert lines == ["ok      line 1: ALTER TABLE t DROP COLUMN d", "ok      line 2: DELETE FROM t"]
    assert conn.execute("SELECT d FROM t").fetchall() == [("kept",)]


@pytest.mark.parametrize(
    "sql",
    [
        "CALL drop_d()",
        "DO $$ BEGIN ALTER TABLE t DROP COLUMN d; COMMIT; END $$",
    ],
    ids=["procedure", "do-block"],
)
def test_a_procedure_or_do_block_that_commits_cannot_commit_a_dry_run(
    conn: psycopg.Connection[Any], sql: str
) -> None:
    conn.execute("CREATE TABLE t (id int, d text); INSERT INTO t VALUES (1, 'kept')")
    conn.execute(
        "CREATE PROCEDURE drop_d() LANGUAGE plpgsql AS "
        "$$ BEGIN ALTER TABLE t DROP COLUMN d; COMMIT; END $$"
    )

    lines = dry_run(conn, split(sql))

    assert lines[0].startswith("FAILED  line 1: invalid transaction termination")
    assert conn.execute("SELECT d FROM t").fetchall() == [("kept",)]
