"""Benchmark ``backout postmortems list`` on 1,000 to 5,000 postmortem files: time per 1,000.

It writes postmortems as ``emergency`` does (front matter with a timeline, action items and a
history; the templated body) into a temporary project, then times ``backout postmortems list
--json`` as a process (start-up included) at each size, best of ``--rounds``. The report gives
the time per 1,000 files at each size and the growth: the time per 1,000 files at the largest
size divided by that at the smallest. Listing must grow linearly: the goal is a growth of at
most 1.5 (the fixed start-up cost makes small sizes look slower per file, never faster), and
5,000 files listed in at most 1.0 s. The first round at each size is cold (no
``.backout/cache``; the files just written), the best of the others warm (the read cache full);
the goals are checked on the warm time, and the cold one is reported beside it.

    python bench/postmortems.py                 # 1,000, 2,000 and 5,000 files, best of 3
    python bench/postmortems.py --sizes 1000 5000 --rounds 5 --json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from backout.postmortems.deadlines import ClockPolicy
from backout.postmortems.file import render_postmortem
from backout.postmortems.model import ActionItem, Entry, Postmortem

GOAL = 1.5
SECONDS_GOAL = 1.0
"""At most this many seconds for the largest size (5,000 files by default), warm."""


def write_postmortems(folder: Path, first: int, stop: int) -> None:
    """Postmortems number ``first`` to ``stop - 1`` (sizes only grow: earlier files are kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(first, stop):
        at = start + timedelta(hours=n)
        incident = f"INC-{at:%Y%m%d}-{n % 100 + 1:02d}x{n}"
        pm = Postmortem(
            id=incident,
            title=f"Rollback of {n:03d}_change on production",
            severity=("SEV1", "SEV2", "SEV3")[n % 3],
            environment="production",
            migration=f"{n:03d}_change",
            owner=f"owner{n % 17}",
            reason="claims stalled after the migration",
            operator="oncall",
            started_at=at,
            status=("draft", "in_review", "reviewed", "closed")[n % 4],
            rolled_back_at=at,
            review_due=at + timedelta(hours=72),
            clock=ClockPolicy(),
            timeline=tuple(Entry(at, f"step {i}") for i in range(8)),
            action_items=(
                ActionItem("Write the fix", f"owner{n % 17}", (at + timedelta(30)).date()),
            ),
        )
        (folder / f"{incident}-change.md").write_text(render_postmortem(pm), encoding="utf-8")


def time_list(project: Path, rounds: int) -> tuple[float, float]:
    """The cold time (the cache removed first) and the best warm time of ``rounds`` runs."""
    shutil.rmtree(project / ".backout" / "cache", ignore_errors=True)
    times = []
    for _ in range(max(rounds, 2)):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "backout", "postmortems", "list", "--json"],
            cwd=project,
            capture_output=True,
            check=False,
        )
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"backout postmortems list failed: {done.stderr.decode()}")
    return times[0], min(times[1:])


def benchmark(sizes: Sequence[int], rounds: int) -> dict[str, Any]:
    per_thousand: dict[int, float] = {}
    seconds_at: dict[int, float] = {}
    cold_at: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="backout-bench-pm-") as scratch:
        project = Path(scratch)
        (project / "backout.toml").write_text('migrations = ["migrations"]\n')
        written = 0
        for size in sorted(sizes):
            write_postmortems(project / "ops/postmortems", written, size)
            written = size
            cold_at[size], seconds = time_list(project, rounds)
            seconds_at[size] = seconds
            per_thousand[size] = seconds / size * 1000
            print(
                f"{size:>6} files: {seconds:.3f} s warm ({cold_at[size]:.3f} s cold), "
                f"{per_thousand[size]:.3f} s per 1,000",
                file=sys.stderr,
            )
    smallest, largest = min(per_thousand), max(per_thousand)
    growth = per_thousand[largest] / per_thousand[smallest]
    return {
        "rounds": rounds,
        "seconds": seconds_at,
        "cold_seconds": cold_at,
        "seconds_per_1000": per_thousand,
        "growth": growth,
        "goal": GOAL,
        "largest": largest,
        "seconds_goal": SECONDS_GOAL,
        "passed": growth <= GOAL and seconds_at[largest] <= SECONDS_GOAL,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time `backout postmortems list` per 1,000 files.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 5000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--check", action="store_true", help="exit 1 when the goal is not met")
    args = parser.parse_args(argv)
    result = benchmark(args.sizes, args.rounds)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for size, seconds in result["seconds_per_1000"].items():
            print(
                f"{size:>6} files: {result['seconds'][size]:.3f} s warm "
                f"({result['cold_seconds'][size]:.3f} s cold), {seconds:.3f} s per 1,000 files"
            )
        growth_ok = result["growth"] <= GOAL
        print(
            f"growth (per 1,000 at the largest / at the smallest): {result['growth']:.2f}, "
            f"goal <= {GOAL}: {'PASS' if growth_ok else 'FAIL'}"
        )
        largest = result["largest"]
        took = result["seconds"][largest]
        print(
            f"{largest} files: {took:.3f} s, goal <= {SECONDS_GOAL} s: "
            f"{'PASS' if took <= SECONDS_GOAL else 'FAIL'}"
        )
    return 1 if args.check and not result["passed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
