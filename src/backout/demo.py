"""``make demo``: the emergency path on the sample migrations and an embedded PostgreSQL.

Copies the sample migrations into a temporary project, lints them, applies them with
``backout apply`` to a new embedded PostgreSQL 18 holding some data, then plays the incident:
``006_add_jobs_priority`` breaks production, ``backout show`` prints the exact documented
rollback, ``backout rollback --dry-run`` rehearses it and ``backout rollback`` runs it; the demo
checks that the column is gone, the data intact and the audit trail written. Run it with
``python -m backout.demo``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Any, LiteralString

import psycopg

from backout.cli import main as backout
from backout.embedded import embedded_postgres

REPOSITORY = Path(__file__).resolve().parents[2]
BROKEN = "006"

SEED_DATA = """
INSERT INTO markets (slug, title, category, status) VALUES
  ('fed-cut-dec', 'Will the Fed cut rates in December?', 'economy', 'open'),
  ('cup-final', 'Who wins the cup final?', 'sports', 'open');
INSERT INTO events (market_id, kind, headline, occurred_at) VALUES
  (1, 'news', 'Inflation cools for a third month', now() - interval '2 days'),
  (1, 'price_move', 'YES jumps to 64%', now() - interval '1 day'),
  (2, 'announcement', 'Kick-off moved to 20:00', now() - interval '3 hours');
INSERT INTO jobs (kind, payload) VALUES
  ('settle_market', '{"market": 1}'), ('send_digest', '{}'), ('payout', '{"user": 7}');
"""


def say(text: str = "") -> None:
    print(text, flush=True)


def step(number: int, text: str) -> None:
    say()
    say(f"[{number}/5] {text}")


def command(*args: str) -> int:
    say("$ backout " + shlex.join(args))
    return backout(list(args))


def run_statement(conn: psycopg.Connection[Any], text: str) -> None:
    """Run SQL the demo wrote itself (the sample data)."""
    conn.execute(text)


def scalar(conn: psycopg.Connection[Any], query: LiteralString) -> Any:
    row = conn.execute(query).fetchone()
    return row[0] if row else None


def run() -> int:
    with tempfile.TemporaryDirectory(prefix="backout-demo-") as folder:
        project = Path(folder)
        shutil.copytree(REPOSITORY / "migrations", project / "migrations")
        (project / "backout.toml").write_text('migrations = ["migrations"]\n')
        os.chdir(project)
        say("backout demo: a migration breaks production; find its documented rollback, run it.")

        step(1, f"A project with the six sample migrations, in {project}")
        if command("lint") != 0:
            return 1

        with embedded_postgres() as url, psycopg.connect(url, autocommit=True) as conn:
            os.environ["DATABASE_URL"] = url
            step(2, "An embedded " + str(scalar(conn, "SELECT version()")).split(" on ")[0])
            if command("apply", "--to", "005", "--yes") != 0:
                return 1
            run_statement(conn, SEED_DATA)
            jobs = scalar(conn, "SELECT count(*) FROM jobs")
            say(f"  (the demo added markets, events and {jobs} jobs)")
            if command("apply", "--yes") != 0 or command("status") != 0:
                return 1

            step(3, f"{BROKEN} breaks production. What exactly does its ROLLBACK section run?")
            if command("show", BROKEN) != 0:
                return 1

            step(4, "Rehearse it in a transaction that is always rolled back, then run it")
            if command("rollback", BROKEN, "--dry-run") != 0:
                return 1
            if command("rollback", BROKEN, "--yes", "--reason", "claims slowed down") != 0:
                return 1

            step(5, "Check the schema came back, the data is intact, and it is all recorded")
            command("status")
            left = scalar(
                conn,
                "SELECT count(*) FROM information_schema.columns"
                " WHERE table_name = 'jobs' AND column_name = 'priority'",
            )
            jobs_after = scalar(conn, "SELECT count(*) FROM jobs")
            audit = conn.execute(
                "SELECT action, migration, outcome FROM backout_audit_event ORDER BY id"
            ).fetchall()
            say(f"  jobs.priority columns left: {left}; jobs rows: {jobs_after} (before: {jobs})")
            say(f"  audit trail: {len(audit)} rows, the last: {' '.join(map(str, audit[-1]))}")
            ok = left == 0 and jobs_after == jobs
    say()
    say("Demo finished: the documented rollback ran as shown." if ok else "Demo FAILED.")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(run())
