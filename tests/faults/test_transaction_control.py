"""A section wrapped in ``BEGIN; ... COMMIT;`` runs as one transaction, even when backout dies.

``backout rollback`` runs as a process of its own; a trigger holds the history change (the
step's last write) in ``pg_sleep``; the test waits for that on ``pg_stat_activity``, then
``kill -9``s backout and terminates its backend. The wrapped rollback must be all undone: the
column, its rows and the history row are still there, and no success is audited. (Before the
wrapper was taken off, its ``COMMIT`` had already made the column's drop permanent.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.faults.activity import backend, kill_9, no_backout_sessions, running, terminate
from tests.sample_project import write

COLUMN_D = (
    "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'd'"
)


def one(url: str, query: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture
def project(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n')
    write(
        tmp_path,
        "001_create_t.sql",
        "CREATE TABLE t (id int PRIMARY KEY, d text);\nINSERT INTO t VALUES (1, 'kept');",
        "DROP TABLE t;\nWARNING: this deletes every row of t; back up t first.",
    )
    write(
        tmp_path,
        "002_index_t.sql",
        "CREATE INDEX t_d ON t (d);",
        "BEGIN;\nDROP INDEX t_d;\nALTER TABLE t DROP COLUMN d;\nCOMMIT;\n"
        "WARNING: this deletes t.d; back up t first.",
    )
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_kill_9_during_the_history_change_of_a_wrapped_rollback_undoes_all_of_it(
    project: Path, database_url: str
) -> None:
    with running(["apply", "--yes"], project) as process:
        assert process.wait() == 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION slow_history() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(60); RETURN OLD; END $$"
        )
        conn.execute(
            "CREATE TRIGGER slow BEFORE DELETE ON schema_migrations "
            "FOR EACH ROW EXECUTE FUNCTION slow_history()"
        )

    with running(["rollback", "002", "--yes"], project) as process:
        pid = backend(database_url, "wait_event = 'PgSleep'")
        kill_9(process)
        terminate(database_url, pid)
    no_backout_sessions(database_url)

    assert one(database_url, COLUMN_D) == 1
    assert one(database_url, "SELECT string_agg(d, ',') FROM t") == "kept"
    assert one(database_url, "SELECT to_regclass('t_d') IS NOT NULL")
    assert (
        one(database_url, "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations")
        == "001,002"
    )
    assert (
        one(
            database_url,
            "SELECT count(*) FROM backout_audit_event "
            "WHERE action = 'rollback' AND outcome = 'success'",
        )
        == 0
    )
