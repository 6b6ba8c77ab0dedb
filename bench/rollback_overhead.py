"""Benchmark what ``backout rollback`` costs on top of running the same rollback SQL with psql.

What it measures: the wall time of rolling back one migration whose documented rollback drops an
index on a large table and rebuilds the original one, done two ways on the same state:

1. ``backout rollback 001 --database-url URL --yes`` (history row, audit row, advisory lock,
   timeouts, Python start-up: everything an operator would get);
2. ``psql -X -q -v ON_ERROR_STOP=1 -1 -f rollback.sql URL``, where ``rollback.sql`` holds exactly
   the statements ``backout rollback 001 --print-sql`` prints, in one transaction as backout runs
   them.

The table ``orders`` is created once in a scratch database and filled with ``--rows`` rows
(2,000,000 by default) from ``generate_series``, with the original index, then vacuumed and
analyzed. The migration ``001_reindex_orders.sql`` (in the strategy's format, in a temporary
project folder) replaces that index with a wider one and is applied once with
``backout apply``. Every round then times each tool's rollback, in alternating order so that
neither always runs on a warmer cache, and puts the migration back, untimed: ``backout apply
--reapply 001`` after backout's rollback, and the forward SQL through psql after psql's (which
bypassed backout, so its history still says applied, as it should). After every rollback the
index is checked to be the original one, so both tools did the same work.

The report gives each tool's median and best time, the ratio of the medians (backout/psql) with
PASS/FAIL against the goal (at most 1.10), and, for context, backout's own start-up time
(``backout --version``, median of 5): on a big table the index build dominates and start-up is
most of the overhead. ``backout rollback 001 --print-sql`` (median of 5) is shown too: the
rollback command's imports and the migration parsed, without a database, so that what remains
of the overhead is the bookkeeping around the SQL.

Run it with ``make bench-rollback``, or directly:

    python bench/rollback_overhead.py                          # 2,000,000 rows, 5 rounds
    python bench/rollback_overhead.py --rows 200000 --rounds 3
    python bench/rollback_overhead.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
    python bench/rollback_overhead.py --json                   # one JSON object, nothing else

Without ``--database-url`` it starts the embedded PostgreSQL (the ``embedded`` extra). With it,
the benchmark creates its own database ``backout_bench_rollback`` on that server (dropping one
left by an earlier run) and drops it at the end, so the user needs CREATEDB. Progress goes to
stderr. The exit code is 1 when a command fails, or with ``--check`` when the goal fails;
otherwise 0.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import children
from backout.database.connection import redact
from backout.errors import BackoutError

REPO = Path(__file__).resolve().parent.parent
GOAL = 1.10
"""The most backout's median rollback time may be, as a multiple of psql's."""
DATABASE = "backout_bench_rollback"
VERSION = "001"
MIGRATION = f"{VERSION}_reindex_orders.sql"
BANNER = "-- " + "=" * 76
FORWARD = (
    "DROP INDEX idx_orders_customer;",
    "CREATE INDEX idx_orders_customer ON orders (customer_email, created_at);",
)
ROLLBACK = (
    "DROP INDEX IF EXISTS idx_orders_customer;",
    "CREATE INDEX idx_orders_customer ON orders (customer_email);",
)
ORIGINAL_COLUMNS = "(customer_email)"
FORWARD_COLUMNS = "(customer_email, created_at)"
STARTUP_RUNS = 5
COMMAND_TIMEOUT = 900
"""Seconds any one command may take before the benchmark gives up."""


class BenchError(Exception):
    """A command failed or the database is not in the state a round expects."""


# ---------------------------------------------------------------------------------------------
# The project and the table
# ---------------------------------------------------------------------------------------------


def migration_text() -> str:
    """The migration in the strategy's format: header, forward SQL, commented ROLLBACK block."""
    lines = [
        f"-- Migration: {MIGRATION}",
        "-- Purpose: Index orders by customer and creation time for the order history page",
        "-- Phase: 1",
        "-- Checklist: 1.1",
        "",
        BANNER,
        "-- ORDERS CUSTOMER INDEX",
        BANNER,
        "-- The order history page lists a customer's orders newest first.",
        "",
        *FORWARD,
        "",
        BANNER,
        "-- ROLLBACK",
        BANNER,
        "-- To rollback this migration:",
        *(f"--   {statement}" for statement in ROLLBACK),
        "--",
        "-- WARNING: Rebuilding the index blocks writes to orders while it builds.",
        "",
    ]
    return "\n".join(lines)


def write_project(root: Path) -> None:
    (root / "migrations").mkdir()
    (root / "backout.toml").write_text(
        'migrations = ["migrations"]\ndecisions_log = false\n', encoding="utf-8"
    )
    (root / "migrations" / MIGRATION).write_text(migration_text(), encoding="utf-8")
    (root / "forward.sql").write_text("\n".join(FORWARD) + "\n", encoding="utf-8")


def with_database(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname`` on the same server, still a URL if it was one."""
    if "://" not in url:
        return make_conninfo("", **conninfo_to_dict(url, dbname=dbname))
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A fresh database on the server at ``server_url``; yield its URL; drop it afterwards."""
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE))
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(drop)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    try:
        yield with_database(server_url, DATABASE)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(drop)


def create_orders(url: str, rows: int) -> str:
    """Create and fill ``orders`` with its original index; return the server version."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE orders ("
            " id BIGINT PRIMARY KEY,"
            " customer_id INTEGER NOT NULL,"
            " customer_email TEXT NOT NULL,"
            " status TEXT NOT NULL,"
            " amount_cents INTEGER NOT NULL,"
            " created_at TIMESTAMPTZ NOT NULL)"
        )
        # Customers are spread over the table (not sorted), as real orders are.
        conn.execute(
            "INSERT INTO orders (id, customer_id, customer_email, status, amount_cents,"
            " created_at)"
            " SELECT g, (g::bigint * 7919) %% 100000,"
            " 'customer.' || md5(((g::bigint * 7919) %% 100000)::text) || '@example.com',"
            " (ARRAY['pending', 'paid', 'shipped', 'refunded'])[1 + g %% 4],"
            " (g * 37) %% 50000,"
            " TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '13 seconds'"
            " FROM generate_series(1, %s) AS g",
            (rows,),
        )
        conn.execute(f"CREATE INDEX idx_orders_customer ON orders {ORIGINAL_COLUMNS}")
        conn.execute("VACUUM ANALYZE orders")
        return conn.info.parameter_status("server_version") or "unknown"


def index_columns(url: str) -> str:
    """The column list of ``idx_orders_customer``, e.g. ``(customer_email)``; empty when missing."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_orders_customer'"
        ).fetchone()
    if row is None:
        return ""
    definition = str(row[0])
    return definition[definition.rfind("(") :]


def expect_index(url: str, columns: str, after: str) -> None:
    found = index_columns(url)
    if found != columns:
        raise BenchError(
            f"after {after}, idx_orders_customer is {found or 'missing'}, not {columns}"
        )


# ---------------------------------------------------------------------------------------------
# Running the tools
# ---------------------------------------------------------------------------------------------


@dataclass
class Tool:
    name: str
    rollback: list[str]
    restore: list[str]
    """The untimed command that puts the migration back after this tool's rollback."""
    runs: list[float] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "command": redact(shlex.join(self.rollback)),
            "median_seconds": statistics.median(self.runs),
            "best_seconds": min(self.runs),
            "runs_seconds": self.runs,
        }


def child_env(project: Path) -> dict[str, str]:
    """A backout child's environment (see children.py), without DATABASE_URL: the URL is
    passed on the command line."""
    return children.child_env(project, drop=("DATABASE_URL",))


def run(argv: Sequence[str], project: Path) -> tuple[float, str]:
    """Run ``argv`` in ``project``; return its wall time and stdout, or raise on failure."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            argv,
            cwd=project,
            env=child_env(project),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"{redact(shlex.join(argv))}: {exc}") from None
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-5:]) or "no output on stderr"
        raise BenchError(f"{redact(shlex.join(argv))}: exit {done.returncode}: {redact(tail)}")
    return seconds, done.stdout


def tools(backout: list[str], psql: str, url: str, project: Path) -> list[Tool]:
    """backout and psql, with psql's rollback file holding what backout would run."""
    _, printed = run([*backout, "rollback", VERSION, "--print-sql"], project)
    (project / "rollback.sql").write_text(printed, encoding="utf-8")
    psql_file = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f"]
    return [
        Tool(
            "backout",
            [*backout, "rollback", VERSION, "--database-url", url, "--yes"],
            [*backout, "apply", "--database-url", url, "--yes", "--reapply", VERSION],
        ),
        Tool("psql", [*psql_file, "rollback.sql", url], [*psql_file, "forward.sql", url]),
    ]


def measure(found: list[Tool], url: str, project: Path, rounds: int) -> None:
    """Time each tool's rollback once per round, first one tool then the other, alternating."""
    for r in range(rounds):
        order = found if r % 2 == 0 else found[::-1]
        for tool in order:
            progress(f"round {r + 1}/{rounds}: {tool.name} rollback ...")
            seconds, _ = run(tool.rollback, project)
            expect_index(url, ORIGINAL_COLUMNS, f"{tool.name}'s rollback")
            tool.runs.append(seconds)
            progress(f"  {seconds:.3f} s; restoring (untimed) ...")
            run(tool.restore, project)
            expect_index(url, FORWARD_COLUMNS, f"restoring after {tool.name}")


def startup(backout: list[str], project: Path) -> list[float]:
    return [run([*backout, "--version"], project)[0] for _ in range(STARTUP_RUNS)]


def planning(backout: list[str], project: Path) -> list[float]:
    """``backout rollback 001 --print-sql``: the rollback command's imports and the migration
    read and parsed, without a database."""
    argv = [*backout, "rollback", VERSION, "--print-sql"]
    return [run(argv, project)[0] for _ in range(STARTUP_RUNS)]


def version(argv: Sequence[str], project: Path) -> str:
    try:
        out = run(argv, project)[1].strip()
    except BenchError:
        return "unknown"
    return out.splitlines()[0] if out else "unknown"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------


def summarise(args: argparse.Namespace, found: list[Tool], facts: dict[str, Any]) -> dict[str, Any]:
    backout, psql = (statistics.median(t.runs) for t in found)
    ratio = backout / psql
    return {
        **facts,
        "rows": args.rows,
        "rounds": args.rounds,
        "tools": {t.name: t.as_json() for t in found},
        "overhead_seconds": backout - psql,
        "ratio": ratio,
        "goal": GOAL,
        "verdict": "PASS" if ratio <= GOAL else "FAIL",
    }


def report_text(summary: dict[str, Any]) -> str:
    start = summary["backout_startup"]
    lines = [
        f"backout rollback overhead: {summary['rows']:,} rows, {summary['rounds']} round(s), "
        f"alternating; PostgreSQL {summary['server_version']} at {summary['database']}",
        "rollback: " + " ".join(ROLLBACK),
        "",
        f"{'tool':<10}{'median (s)':>12}{'best (s)':>10}  runs (s)",
    ]
    for name, data in summary["tools"].items():
        runs = " ".join(f"{s:.3f}" for s in data["runs_seconds"])
        lines.append(
            f"{name:<10}{data['median_seconds']:>12.3f}{data['best_seconds']:>10.3f}  {runs}"
        )
    lines += [
        "",
        f"backout start-up ({summary['backout_version']}, --version, median of "
        f"{len(start['runs_seconds'])}): {start['median_seconds']:.3f} s",
        f"backout rollback {VERSION} --print-sql (the command's imports, no database, median of "
        f"{len(start['runs_seconds'])}): {summary['backout_print_sql']['median_seconds']:.3f} s",
        f"overhead (median backout - median psql): {summary['overhead_seconds']:.3f} s",
        f"backout/psql (medians): {summary['ratio']:.3f}   goal <= {summary['goal']}   "
        f"{summary['verdict']}",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time backout rollback against psql -1 -f with the same SQL on a big table."
    )
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows in orders (2000000)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rollbacks per tool (5)")
    parser.add_argument(
        "--database-url",
        help="a server to use; the benchmark creates and drops its own database there "
        "(default: start the embedded PostgreSQL)",
    )
    parser.add_argument(
        "--backout-cmd",
        help="command prefix for backout, e.g. 'python -m backout' (default: the repo's .venv, "
        "then beside this Python, then PATH, then python -m backout)",
    )
    parser.add_argument("--psql", default="psql", help="the psql client to run (psql on PATH)")
    parser.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    parser.add_argument("--check", action="store_true", help="exit 1 when the goal fails")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.rounds < 1:
        parser.error("--rows and --rounds must be at least 1")
    return args


def benchmark(args: argparse.Namespace, project: Path) -> dict[str, Any]:
    psql = shutil.which(args.psql)
    if psql is None:
        raise BenchError(f"{args.psql} not found; install the PostgreSQL client or pass --psql")
    backout = children.backout_prefix(args.backout_cmd)
    write_project(project)
    with children.server(args.database_url) as server_url, scratch_database(server_url) as url:
        progress(f"creating orders with {args.rows:,} rows in {redact(url)} ...")
        server_version = create_orders(url, args.rows)
        found = tools(backout, psql, url, project)
        progress(f"applying {MIGRATION} ...")
        run([*backout, "apply", "--database-url", url, "--yes"], project)
        expect_index(url, FORWARD_COLUMNS, "the first apply")
        measure(found, url, project, args.rounds)
    runs = startup(backout, project)
    printed = planning(backout, project)
    facts = {
        "database": redact(url),
        "server_version": server_version.split()[0],
        "backout_version": version([*backout, "--version"], project),
        "psql_version": version([psql, "--version"], project),
        "backout_startup": {"median_seconds": statistics.median(runs), "runs_seconds": runs},
        "backout_print_sql": {
            "median_seconds": statistics.median(printed),
            "runs_seconds": printed,
        },
    }
    return summarise(args, found, facts)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="backout-bench-rollback-") as tmp:
        try:
            summary = benchmark(args, Path(tmp))
        except (BenchError, BackoutError, psycopg.Error) as exc:
            progress(f"rollback_overhead: error: {redact(str(exc).strip())}")
            return 1
    print(json.dumps(summary, indent=2) if args.json else report_text(summary))
    return 1 if args.check and summary["verdict"] == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
