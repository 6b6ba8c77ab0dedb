"""Benchmark how long backout takes to start, against the interpreter starting and doing nothing.

What it measures: the wall time of four processes, each run ``--runs`` times (10 by default) in
alternating order (one of each per round, the order rotating every round, so that none always
runs on a warmer cache), after one untimed warm-up run of each:

1. ``python -c pass``: the reference, the least any Python program costs to start;
2. ``backout --version``;
3. ``backout --help``;
4. ``backout show 001``: a command that reads and parses a migration (the repository's own
   ``migrations/`` folder, copied into a temporary project).

The report gives each command's median and best time and its ratio to ``python -c pass``
(medians). The goal is on ``--version`` only: at most 4 times ``python -c pass``. The others are
shown for context.

The children run without ``PYTHONDONTWRITEBYTECODE``, so the warm-up run leaves compiled
bytecode behind as an installed package has it; with that variable set, every run would compile
backout's modules again, which no installed backout does.

    python bench/startup.py
    python bench/startup.py --runs 20 --json
    python bench/startup.py --check          # exit 1 when the goal fails

The exit code is 1 when a command fails, or with ``--check`` when the goal fails; otherwise 0.
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

import children

REPO = Path(__file__).resolve().parent.parent
GOAL = 4.0
"""The most ``backout --version`` may take, as a multiple of ``python -c pass`` (medians)."""
REFERENCE = "python -c pass"
GOAL_COMMAND = "backout --version"


class BenchError(Exception):
    """A command failed."""


def run(argv: Sequence[str], project: Path) -> float:
    """Run ``argv`` in ``project``; return its wall time, or raise on failure."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            argv,
            cwd=project,
            env=children.child_env(project),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"{shlex.join(argv)}: {exc}") from None
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-5:]) or "no output on stderr"
        raise BenchError(f"{shlex.join(argv)}: exit {done.returncode}: {tail}")
    return seconds


def commands(backout: list[str]) -> dict[str, list[str]]:
    return {
        REFERENCE: [sys.executable, "-c", "pass"],
        GOAL_COMMAND: [*backout, "--version"],
        "backout --help": [*backout, "--help"],
        "backout show 001": [*backout, "show", "001"],
    }


def measure(found: dict[str, list[str]], project: Path, runs: int) -> dict[str, list[float]]:
    """Each command ``runs`` times, one of each per round, the order rotating every round."""
    names = list(found)
    for name in names:  # warm-up: bytecode written, files in the page cache
        run(found[name], project)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(runs):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(run(found[name], project))
    return times


def summarise(found: dict[str, list[str]], times: dict[str, list[float]]) -> dict[str, Any]:
    reference = statistics.median(times[REFERENCE])
    results: dict[str, dict[str, Any]] = {
        name: {
            "command": shlex.join(found[name]),
            "median_seconds": statistics.median(runs),
            "best_seconds": min(runs),
            "runs_seconds": runs,
            "ratio": statistics.median(runs) / reference,
        }
        for name, runs in times.items()
    }
    ratio = float(results[GOAL_COMMAND]["ratio"])
    return {
        "runs": len(times[REFERENCE]),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "commands": results,
        "goal_command": GOAL_COMMAND,
        "ratio": ratio,
        "goal": GOAL,
        "verdict": "PASS" if ratio <= GOAL else "FAIL",
    }


def report_text(summary: dict[str, Any]) -> str:
    lines = [
        f"backout start-up: {summary['runs']} runs of each, alternating; Python "
        f"{summary['python']}, {summary['cpus']} CPU(s)",
        "",
        f"{'command':<20}{'median (s)':>12}{'best (s)':>10}{'ratio':>8}",
    ]
    for name, data in summary["commands"].items():
        lines.append(
            f"{name:<20}{data['median_seconds']:>12.3f}{data['best_seconds']:>10.3f}"
            f"{data['ratio']:>7.1f}x"
        )
    lines += [
        "",
        f"{summary['goal_command']} / {REFERENCE} (medians): {summary['ratio']:.2f}   "
        f"goal <= {summary['goal']}   {summary['verdict']}",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time backout --version, --help and show against python -c pass."
    )
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each command (10)")
    parser.add_argument(
        "--backout-cmd",
        help="command prefix for backout, e.g. 'python -m backout' (default: the repo's .venv, "
        "then beside this Python, then PATH, then python -m backout)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    parser.add_argument("--check", action="store_true", help="exit 1 when the goal fails")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    found = commands(children.backout_prefix(args.backout_cmd))
    with tempfile.TemporaryDirectory(prefix="backout-bench-startup-") as tmp:
        project = Path(tmp)
        shutil.copytree(REPO / "migrations", project / "migrations")
        (project / "backout.toml").write_text('migrations = ["migrations"]\n', encoding="utf-8")
        try:
            times = measure(found, project, args.runs)
        except BenchError as exc:
            print(f"startup: error: {exc}", file=sys.stderr)
            return 1
    summary = summarise(found, times)
    print(json.dumps(summary, indent=2) if args.json else report_text(summary))
    return 1 if args.check and summary["verdict"] == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
