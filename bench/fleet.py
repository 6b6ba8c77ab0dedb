"""Benchmark a fleet rollback against a shell loop running ``backout rollback`` once per database.

What it measures: on one server, ``--sizes`` fleets (10 and 50 databases by default), each
database made from one template that has the project's six sample migrations applied with
``backout apply``. Every round then times, alternating which goes first, on fresh copies of the
databases (made again from the template, untimed):

1. ``backout rollback 006 --targets FILE --concurrency 8 --waves rest --yes``: the fleet
   rollback, one process, the canary then the rest at 8 at a time;
2. ``for url in ...; do backout rollback 006 --database-url "$url" --yes; done``: what a team
   writes by hand, one process per database, one after another.

After each, every database is checked: 006 no longer applied, one ``rollback`` audit row. The
report gives both medians, their ratio (goal: the fleet at most 0.3 of the loop's time at the
largest size), the fleet process's peak RSS (goal: under 200 MB) and the fleet's time per target
at each size (goal: flat, the largest size's at most 1.2 times the smallest's).

    python bench/fleet.py                                   # the embedded PostgreSQL, 10 and 50
    python bench/fleet.py --sizes 10 20 --rounds 1 --json
    python bench/fleet.py --database-url postgresql://postgres@127.0.0.1:5432/postgres --check

Without ``--database-url`` it starts the embedded PostgreSQL (the ``embedded`` extra). With it,
the benchmark creates databases named ``backout_bench_fleet_*`` on that server (dropping those an
earlier run left) and drops them at the end, so the user needs CREATEDB. Progress goes to stderr.
The exit code is 1 when a command fails, or with ``--check`` when a goal fails; otherwise 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from children import REPO, backout_prefix, child_env, server

RATIO_GOAL = 0.3
RSS_GOAL_MB = 200.0
FLAT_GOAL = 1.2
CONCURRENCY = 8
MIGRATION = "006"
PREFIX = "backout_bench_fleet"
TEMPLATE = f"{PREFIX}_template"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def with_database(url: str, dbname: str) -> str:
    """The server's URL naming another database: a URL still (a targets file holds URLs)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def drop_all(server_url: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{PREFIX}%",)
        ).fetchall()
        for (name,) in rows:
            if name == TEMPLATE:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(sql.Identifier(name))
                )
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def make_project(root: Path) -> Path:
    """A project folder holding the sample migrations."""
    shutil.copytree(REPO / "migrations", root / "migrations")
    (root / "backout.toml").write_text('migrations = ["migrations"]\n', encoding="utf-8")
    return root


def make_template(server_url: str, project: Path, prefix: list[str]) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    url = with_database(server_url, TEMPLATE)
    run([*prefix, "apply", "--database-url", url, "--yes"], project)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE true").format(sql.Identifier(TEMPLATE)))


def fresh_fleet(server_url: str, size: int) -> list[str]:
    """``size`` databases copied from the template (those of an earlier round dropped first)."""
    names = [f"{PREFIX}_{n:03d}" for n in range(1, size + 1)]
    with psycopg.connect(server_url, autocommit=True) as conn:
        for name in names:
            ident = sql.Identifier(name)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                    ident, sql.Identifier(TEMPLATE)
                )
            )
    return [with_database(server_url, name) for name in names]


def run(argv: Sequence[str], project: Path) -> str:
    done = subprocess.run(
        list(argv), cwd=project, env=child_env(project), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(argv[:3])} failed: {done.stderr.strip()}")
    return done.stdout


def measured(argv: Sequence[str], project: Path) -> tuple[float, int]:
    """Run ``argv`` as a process in ``project``: ``(wall seconds, peak RSS in KiB)``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(
            list(argv), cwd=project, env=child_env(project), stdout=out, stderr=err
        )
        _, status, usage = os.wait4(child.pid, 0)
        took = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{shlex.join(argv[:4])} failed: {err.read().decode().strip()}")
        return took, usage.ru_maxrss


def check_rolled_back(urls: Sequence[str]) -> None:
    for url in urls:
        with psycopg.connect(url, autocommit=True) as conn:
            applied = conn.execute(
                "SELECT count(*) FROM schema_migrations WHERE version = %s", (MIGRATION,)
            ).fetchone()
            audits = conn.execute(
                "SELECT count(*) FROM backout_audit_event WHERE action = 'rollback'"
            ).fetchone()
        if not applied or applied[0] != 0 or not audits or audits[0] != 1:
            raise SystemExit(f"{conninfo_to_dict(url)['dbname']}: {MIGRATION} not rolled back")


def timed_fleet(server_url: str, size: int, project: Path, prefix: list[str]) -> tuple[float, int]:
    urls = fresh_fleet(server_url, size)
    targets = project / f"fleet-{size}.txt"
    names = [str(conninfo_to_dict(u)["dbname"]) for u in urls]
    targets.write_text("".join(f"{n} {u}\n" for n, u in zip(names, urls, strict=True)))
    argv = [*prefix, "rollback", MIGRATION, "--targets", str(targets)]
    argv += ["--concurrency", str(CONCURRENCY), "--waves", "rest", "--yes"]
    took, rss = measured(argv, project)
    check_rolled_back(urls)
    return took, rss


def timed_loop(server_url: str, size: int, project: Path, prefix: list[str]) -> float:
    urls = fresh_fleet(server_url, size)
    command = shlex.join([*prefix, "rollback", MIGRATION, "--yes", "--database-url"])
    script = f'for url in "$@"; do {command} "$url" >/dev/null || exit 1; done'
    took, _ = measured(["bash", "-c", script, "loop", *urls], project)
    check_rolled_back(urls)
    return took


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    prefix = backout_prefix(args.backout_cmd)
    results: dict[str, Any] = {"sizes": {}, "concurrency": CONCURRENCY, "rounds": args.rounds}
    with server(args.database_url) as server_url, tempfile.TemporaryDirectory() as scratch:
        drop_all(server_url)
        project = make_project(Path(scratch))
        try:
            progress("applying the sample migrations to the template ...")
            make_template(server_url, project, prefix)
            for size in args.sizes:
                results["sizes"][str(size)] = one_size(server_url, size, project, prefix, args)
        finally:
            drop_all(server_url)
    return verdicts(results, args.sizes)


def one_size(
    server_url: str, size: int, project: Path, prefix: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    fleet: list[float] = []
    loop: list[float] = []
    rss: list[int] = []
    for round_ in range(args.rounds):
        for tool in ("fleet", "loop") if round_ % 2 == 0 else ("loop", "fleet"):
            if tool == "fleet":
                took, peak = timed_fleet(server_url, size, project, prefix)
                fleet.append(took)
                rss.append(peak)
            else:
                took = timed_loop(server_url, size, project, prefix)
                loop.append(took)
            progress(f"{size} targets, round {round_ + 1}/{args.rounds}: {tool} {took:.2f} s")
    median_fleet, median_loop = statistics.median(fleet), statistics.median(loop)
    return {
        "fleet_s": median_fleet,
        "loop_s": median_loop,
        "ratio": median_fleet / median_loop,
        "per_target_s": median_fleet / size,
        "peak_rss_mb": max(rss) / 1024,
    }


def verdicts(results: dict[str, Any], sizes: Sequence[int]) -> dict[str, Any]:
    by_size = results["sizes"]
    smallest, largest = by_size[str(min(sizes))], by_size[str(max(sizes))]
    flat = largest["per_target_s"] / smallest["per_target_s"]
    peak = max(s["peak_rss_mb"] for s in by_size.values())
    results.update(
        ratio=largest["ratio"],
        ratio_goal=RATIO_GOAL,
        peak_rss_mb=peak,
        rss_goal_mb=RSS_GOAL_MB,
        per_target_growth=flat,
        flat_goal=FLAT_GOAL,
        passed=largest["ratio"] <= RATIO_GOAL and peak < RSS_GOAL_MB and flat <= FLAT_GOAL,
    )
    return results


def report_text(r: dict[str, Any]) -> str:
    lines = [
        f"fleet rollback of {MIGRATION} at concurrency {r['concurrency']}, {r['rounds']} rounds"
    ]
    for size, s in r["sizes"].items():
        lines.append(
            f"  {int(size):>3} targets  fleet {s['fleet_s']:.2f} s  loop {s['loop_s']:.2f} s  "
            f"ratio {s['ratio']:.2f}  per target {s['per_target_s'] * 1000:.0f} ms  "
            f"peak RSS {s['peak_rss_mb']:.0f} MB"
        )
    lines += [
        f"  ratio fleet/loop at the largest size {r['ratio']:.2f}  goal <= {r['ratio_goal']}: "
        + verdict(r["ratio"] <= r["ratio_goal"]),
        f"  peak RSS {r['peak_rss_mb']:.0f} MB  goal < {r['rss_goal_mb']:.0f} MB: "
        + verdict(r["peak_rss_mb"] < r["rss_goal_mb"]),
        f"  time per target, largest/smallest size {r['per_target_growth']:.2f}  goal <= "
        f"{r['flat_goal']}: " + verdict(r["per_target_growth"] <= r["flat_goal"]),
    ]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help="a server to use (default: the embedded one)")
    parser.add_argument("--backout-cmd", help="how to start backout (default: the venv's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is not met")
    args = parser.parse_args(argv)
    result = benchmark(args)
    print(json.dumps(result, indent=2) if args.json else report_text(result))
    return 1 if args.check and not result["passed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
