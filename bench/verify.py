"""Benchmark ``backout verify --all`` against a psql loop running the same SQL, at 50, 100, 200.

For each size it writes that many migrations in the strategy's format (each creates a table
with a column, a check constraint and an index, with a documented rollback), then times, on the
same server and alternating:

1. ``backout verify --all --scratch-database-url URL``: a scratch database created and dropped,
   and for each migration apply, roll back, apply again, with a schema fingerprint around each
   step, start-up included;
2. the same work without the checks, as a psql loop: a scratch database created and dropped,
   and a shell loop running ``psql -X -q -1 -v ON_ERROR_STOP=1 -f`` on the forward SQL, the
   rollback SQL and the forward SQL again of each migration, in order: what a team writes by
   hand to rehearse its rollbacks;
3. for context, the least that work can cost: one psql session running every step of every
   migration from one script, each in its own transaction.

The report gives the three times at each size, the ratios (goal: backout at most 1.5 times the
psql loop; the ratio to the single session is shown too) and backout's time per migration,
which must stay flat (linear growth).

    python bench/verify.py                                          # the embedded PostgreSQL
    python bench/verify.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
    python bench/verify.py --sizes 50 100 --rounds 1 --json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from children import server

GOAL = 1.5
BANNER = "-- " + "=" * 76


def forward(n: int) -> list[str]:
    return [
        f"CREATE TABLE bench_{n:04d} (id bigint PRIMARY KEY, name text NOT NULL, score int,"
        f" CONSTRAINT bench_{n:04d}_score CHECK (score >= 0));",
        f"CREATE INDEX idx_bench_{n:04d}_name ON bench_{n:04d} (name);",
    ]


def rollback(n: int) -> list[str]:
    return [f"DROP INDEX IF EXISTS idx_bench_{n:04d}_name;", f"DROP TABLE IF EXISTS bench_{n:04d};"]


def write_project(root: Path, count: int) -> str:
    """The migrations, and the psql script doing the same apply/rollback/apply work."""
    folder = root / "migrations"
    folder.mkdir(parents=True)
    (root / "backout.toml").write_text('migrations = ["migrations"]\n')
    script = []
    for n in range(1, count + 1):
        name = f"{n:03d}_create_bench_{n:04d}"
        lines = [
            f"-- Migration: {name}.sql",
            "-- Purpose: bench",
            "-- Phase: 1",
            "-- Checklist: 1.1",
            "",
            *forward(n),
            "",
            BANNER,
            "-- ROLLBACK",
            BANNER,
            "-- To rollback this migration:",
            *(f"--   {s}" for s in rollback(n)),
        ]
        (folder / f"{name}.sql").write_text("\n".join(lines) + "\n")
        steps = root / "steps"
        steps.mkdir(exist_ok=True)
        (steps / f"{n:04d}_forward.sql").write_text("\n".join(forward(n)) + "\n")
        (steps / f"{n:04d}_rollback.sql").write_text("\n".join(rollback(n)) + "\n")
        for block in (forward(n), rollback(n), forward(n)):
            script += ["BEGIN;", *block, "COMMIT;"]
    return "\n".join(script) + "\n"


def with_database(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo("", **params)


def timed(argv: Sequence[str], cwd: Path, stdin: str | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(list(argv), cwd=cwd, input=stdin, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed: {done.stderr.strip() or done.stdout}")
    return took


LOOP = """#!/bin/sh
# What a team writes by hand: each step of each migration with psql -1 -f, in order.
set -e
for forward in steps/*_forward.sql; do
  rollback="${forward%_forward.sql}_rollback.sql"
  psql -X -q -1 -v ON_ERROR_STOP=1 -f "$forward" "$1"
  psql -X -q -1 -v ON_ERROR_STOP=1 -f "$rollback" "$1"
  psql -X -q -1 -v ON_ERROR_STOP=1 -f "$forward" "$1"
done
"""


def psql_steps(server_url: str, cwd: Path) -> float:
    """Create a scratch database, run the per-step loop in it, drop it."""
    started = time.perf_counter()
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS bench_psql_loop")
        conn.execute("CREATE DATABASE bench_psql_loop")
    (cwd / "loop.sh").write_text(LOOP)
    timed(["sh", "loop.sh", with_database(server_url, "bench_psql_loop")], cwd)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE bench_psql_loop")
    return time.perf_counter() - started


def psql_loop(psql: str, server_url: str, script: Path, cwd: Path) -> float:
    """Create a scratch database, run the loop in it, drop it: what verify's work costs bare."""
    started = time.perf_counter()
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS bench_psql_loop")
        conn.execute("CREATE DATABASE bench_psql_loop")
    timed(
        [
            psql,
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            str(script),
            with_database(server_url, "bench_psql_loop"),
        ],
        cwd,
    )
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE bench_psql_loop")
    return time.perf_counter() - started


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    psql = shutil.which("psql")
    if psql is None:
        raise SystemExit("psql is not installed")
    rows: list[dict[str, Any]] = []
    backout = [sys.executable, "-m", "backout", "verify", "--all", "--scratch-database-url"]
    with server(args.database_url) as server_url:
        for size in args.sizes:
            with tempfile.TemporaryDirectory(prefix="backout-bench-verify-") as scratch:
                root = Path(scratch)
                (root / "loop.sql").write_text(write_project(root, size))
                times: dict[str, list[float]] = {"backout": [], "loop": [], "session": []}
                for round_ in range(args.rounds):
                    order = list(times) if round_ % 2 == 0 else list(reversed(times))
                    for tool in order:
                        if tool == "backout":
                            took = timed([*backout, server_url], root)
                        elif tool == "loop":
                            took = psql_steps(server_url, root)
                        else:
                            took = psql_loop(psql, server_url, root / "loop.sql", root)
                        times[tool].append(took)
                        print(
                            f"{size} migrations, round {round_ + 1}: {tool} {took:.2f} s",
                            file=sys.stderr,
                        )
                b, loop, session = (statistics.median(times[t]) for t in times)
                rows.append(
                    {
                        "migrations": size,
                        "backout_s": b,
                        "psql_loop_s": loop,
                        "psql_session_s": session,
                        "ratio": b / loop,
                        "ratio_to_one_session": b / session,
                        "backout_ms_per_migration": b / size * 1000,
                    }
                )
    worst = max(r["ratio"] for r in rows)
    per = [r["backout_ms_per_migration"] for r in rows]
    return {
        "sizes": rows,
        "worst_ratio": worst,
        "goal": GOAL,
        "passed": worst <= GOAL,
        "growth": per[-1] / per[0],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="backout verify --all against a psql loop.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help="a server to use (default: the embedded one)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--check", action="store_true", help="exit 1 when the goal is not met")
    args = parser.parse_args(argv)
    result = benchmark(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for r in result["sizes"]:
            print(
                f"{r['migrations']:>4} migrations: backout {r['backout_s']:.2f} s, psql loop "
                f"{r['psql_loop_s']:.2f} s (ratio {r['ratio']:.2f}), one psql session "
                f"{r['psql_session_s']:.2f} s (ratio {r['ratio_to_one_session']:.2f}), "
                f"{r['backout_ms_per_migration']:.1f} ms per migration"
            )
        print(
            f"worst ratio {result['worst_ratio']:.2f}, goal <= {GOAL}: "
            f"{'PASS' if result['passed'] else 'FAIL'}; time per migration from the smallest "
            f"to the largest size: x{result['growth']:.2f}"
        )
    return 1 if args.check and not result["passed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
