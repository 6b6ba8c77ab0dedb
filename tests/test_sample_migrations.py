"""The sample migration set applies in order on a fresh database, and its documented rollbacks,
run from the newest migration down, undo it exactly."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import TupleRow

from backout.migrations.file import read_migration

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
FILES = sorted(MIGRATIONS.glob("*.sql"))
BANNER = "-- " + "=" * 76

Connection = psycopg.Connection[TupleRow]


def rollback_statements(text: str) -> list[str]:
    """The SQL documented under a file's ``-- ROLLBACK`` heading, one string per statement.

    Deliberately simple, and only for the sample files' own layout: a statement starts on a
    ``--   `` line, may continue on more indented ``--     `` lines, and ends with ``;``. An
    independent oracle for backout's parser on these files.
    """
    lines = text.splitlines()
    heading = lines.index("-- ROLLBACK")
    statements: list[str] = []
    for line in lines[heading + 1 :]:
        if line.startswith("--     ") and statements and not statements[-1].endswith(";"):
            statements[-1] += " " + line.removeprefix("--").strip()
        elif line.startswith("--   ") and not line.startswith("--    "):
            statements.append(line.removeprefix("--").strip())
    return statements


@contextmanager
def connected(url: str) -> Iterator[Connection]:
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


def apply(conn: Connection, files: Sequence[Path]) -> None:
    """Run each file's whole text, as psql's ``\\i`` would, one transaction per file."""
    for path in files:
        with conn.transaction():
            conn.execute(path.read_text(encoding="utf-8"))


def roll_back(conn: Connection, files: Sequence[Path]) -> None:
    """Run each file's documented rollback as backout reads it, newest first, a transaction each."""
    for path in reversed(files):
        with conn.transaction():
            for statement in read_migration(path).rollback.statements:
                conn.execute(statement.sql)


def names(conn: Connection, query: str) -> set[str]:
    return {row[0] for row in conn.execute(query)}


def schema(conn: Connection) -> dict[str, set[str]]:
    """Everything the migrations can create in ``public``, as comparable text."""
    return {
        "relations": names(
            conn,
            "SELECT c.relkind::text || ' ' || c.relname FROM pg_class c "
            "WHERE c.relnamespace = 'public'::regnamespace",
        ),
        "columns": names(
            conn,
            "SELECT table_name || '.' || column_name || ' ' || data_type"
            " || coalesce('(' || numeric_precision || ',' || numeric_scale || ')', '')"
            " || ' ' || is_nullable || ' ' || coalesce(column_default, '') "
            "FROM information_schema.columns WHERE table_schema = 'public'",
        ),
        "constraints": names(
            conn,
            "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace",
        ),
        "indexes": names(conn, "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'"),
        "functions": names(
            conn,
            "SELECT p.oid::regprocedure::text FROM pg_proc p "
            "WHERE p.pronamespace = 'public'::regnamespace",
        ),
        "triggers": names(
            conn,
            "SELECT t.tgname || ' ON ' || c.relname FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace",
        ),
    }


def one(conn: Connection, query: str, params: Sequence[object] | None = None) -> TupleRow:
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row


def seed_market_events(conn: Connection) -> dict[str, int]:
    """A market with one event of each kind; the event ids by kind."""
    (market_id,) = one(
        conn,
        "INSERT INTO markets (slug, title, category, status, opens_at, closes_at) "
        "VALUES ('vintage-cameras', 'Vintage cameras', 'collectibles', 'open', "
        "'2026-11-01T00:00Z', '2026-12-01T00:00Z') RETURNING id",
    )
    return {
        kind: one(
            conn,
            "INSERT INTO events (market_id, kind, headline, occurred_at) "
            "VALUES (%s, %s, %s, now()) RETURNING id",
            (market_id, kind, f"A {kind} about vintage cameras"),
        )[0]
        for kind in ("news", "announcement", "price_move", "resolution")
    }


def scores(conn: Connection) -> dict[int, Decimal | None]:
    return dict(conn.execute("SELECT id, impact_score FROM events").fetchall())


def test_the_sample_set_is_six_files_in_version_order() -> None:
    assert [p.name for p in FILES] == [
        "001_create_jobs.sql",
        "002_create_core_schema.sql",
        "003_add_markets_index.sql",
        "004_alter_events_add_impact_score.sql",
        "005_backfill_events_impact_score.sql",
        "006_add_jobs_priority.sql",
    ]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_each_sample_follows_the_strategy_layout(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == f"-- Migration: {path.name}"
    assert [line.split(":")[0] for line in lines[1:4]] == ["-- Purpose", "-- Phase", "-- Checklist"]
    heading = lines.index("-- ROLLBACK")
    assert lines[heading - 1] == lines[heading + 1] == BANNER
    assert lines[heading + 2] == "-- To rollback this migration:"
    statements = rollback_statements("\n".join(lines))
    assert statements
    assert all(s.endswith(";") and s.count(";") == 1 for s in statements)
    parsed = read_migration(path).rollback.statements
    assert [" ".join(s.sql.split()) + ";" for s in parsed] == statements
    assert all(line.startswith("--") for line in lines[heading:])


def test_the_samples_apply_in_order_on_a_fresh_database(database_url: str) -> None:
    with connected(database_url) as conn:
        apply(conn, FILES)
        applied = schema(conn)

    assert {r for r in applied["relations"] if r.startswith("r ")} == {
        "r jobs",
        "r markets",
        "r events",
        "r impact_score_backfill_log",
    }
    assert "events.impact_score numeric(5,2) YES " in applied["columns"]
    assert "jobs.priority smallint(16,0) NO 0" in applied["columns"]
    assert {
        "events_market_id_fkey FOREIGN KEY (market_id) REFERENCES markets(id) ON DELETE CASCADE",
        "events_kind_check CHECK ((kind = ANY (ARRAY['news'::text, 'announcement'::text, "
        "'price_move'::text, 'resolution'::text])))",
        "events_impact_score_range CHECK (((impact_score IS NULL) OR "
        "((impact_score >= (0)::numeric) AND (impact_score <= (100)::numeric))))",
        "jobs_priority_range CHECK (((priority >= '-100'::integer) AND (priority <= 100)))",
    } <= applied["constraints"]
    assert {
        "CREATE INDEX idx_markets_status_closes_at"
        " ON public.markets USING btree (status, closes_at)",
        "CREATE INDEX idx_jobs_claimable_priority"
        " ON public.jobs USING btree (priority DESC, run_after) WHERE (status = 'queued'::text)",
    } <= applied["indexes"]
    assert applied["functions"] == {"update_updated_at_column()"}
    assert applied["triggers"] == {
        "trg_jobs_updated_at ON jobs",
        "trg_markets_updated_at ON markets",
    }


def test_the_jobs_trigger_stamps_updated_at_on_update(database_url: str) -> None:
    with connected(database_url) as conn:
        apply(conn, FILES)
        job_id, priority = one(
            conn,
            "INSERT INTO jobs (kind, payload, updated_at) "
            "VALUES ('payout', '{\"seller_id\": 42}', '2000-01-01T00:00Z') RETURNING id, priority",
        )
        with conn.transaction():
            stamped = one(
                conn,
                "UPDATE jobs SET status = 'running' WHERE id = %s RETURNING updated_at = now()",
                (job_id,),
            )

    assert priority == 0
    assert stamped == (True,)


def test_the_backfill_fills_only_null_scores_and_logs_what_it_filled(database_url: str) -> None:
    with connected(database_url) as conn:
        apply(conn, FILES[:4])
        events = seed_market_events(conn)
        conn.execute("UPDATE events SET impact_score = 42 WHERE id = %s", (events["news"],))
        apply(conn, FILES[4:5])
        after = scores(conn)
        log = dict(conn.execute("SELECT event_id, backfilled_score FROM impact_score_backfill_log"))

    assert after == {
        events["news"]: Decimal("42.00"),
        events["announcement"]: Decimal("25.00"),
        events["price_move"]: Decimal("50.00"),
        events["resolution"]: Decimal("100.00"),
    }
    assert log == {k: v for k, v in after.items() if k != events["news"]}


def test_the_backfill_rollback_restores_nulls_and_keeps_later_scores(database_url: str) -> None:
    with connected(database_url) as conn:
        apply(conn, FILES[:4])
        events = seed_market_events(conn)
        conn.execute("UPDATE events SET impact_score = 42 WHERE id = %s", (events["news"],))
        apply(conn, FILES[4:])
        conn.execute("UPDATE events SET impact_score = 77 WHERE id = %s", (events["resolution"],))
        roll_back(conn, FILES[4:])
        after = scores(conn)
        left = schema(conn)["relations"]

    assert after == {
        events["news"]: Decimal("42.00"),
        events["announcement"]: None,
        events["price_move"]: None,
        events["resolution"]: Decimal("77.00"),
    }
    assert "r impact_score_backfill_log" not in left


@pytest.mark.parametrize("index", range(len(FILES)), ids=[p.stem for p in FILES])
def test_each_rollback_restores_the_schema_before_its_migration(
    database_url: str, index: int
) -> None:
    with connected(database_url) as conn:
        apply(conn, FILES[:index])
        before = schema(conn)
        apply(conn, FILES[index : index + 1])
        roll_back(conn, FILES[index : index + 1])
        after = schema(conn)

    assert after == before


def test_rolling_back_every_sample_newest_first_leaves_an_empty_schema(database_url: str) -> None:
    with connected(database_url) as conn:
        apply(conn, FILES[:4])
        seed_market_events(conn)
        apply(conn, FILES[4:])
        conn.execute("INSERT INTO jobs (kind, priority) VALUES ('settle_market', 10)")
        roll_back(conn, FILES)
        left = schema(conn)

    assert left == {
        "relations": set(),
        "columns": set(),
        "constraints": set(),
        "indexes": set(),
        "functions": set(),
        "triggers": set(),
    }
