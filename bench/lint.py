"""Benchmark ``backout lint`` against sqlfluff and squawk on the same generated migration set.

What it measures: the wall time, files per second and peak memory (RSS of the largest process in
each tool's process tree) of three linters run as subprocesses, one after the other, on exactly the
same files:

1. ``backout lint --format json <folders...>`` (exit 0 or 3 both count as a good run);
2. ``sqlfluff lint --dialect postgres --disable-progress-bar --nofail <folders...>``;
3. ``squawk <files...>``.

The files are generated fresh on every run, deterministically from ``--seed``, in the migration
strategy's format (header fields, ``=`` section banners, tables with constraints, a plpgsql trigger
function and its trigger, indexes, added columns, backfills, and the commented ROLLBACK block).
A folder holds at most 999 files because versions have three digits, so the set is split across
``set_a/``, ``set_b/``, ... each numbered from 001.

The goals printed as PASS/FAIL: backout takes at most 1/20 of sqlfluff's time (ratio <= 0.05) and
no more than squawk's (ratio <= 1.0). backout keeps each file's findings in
``.backout/cache/lint.json`` (keyed by the file's bytes): the cache is removed before the first
run, which is reported as backout's cold time; backout and squawk then run at least
``WARM_RUNS`` times in all (alternating), and the ratios use each tool's best, for backout a
warm run (the tree unchanged since the last lint). The cold ratio to squawk is reported beside it.

Run it with ``make bench`` (installs sqlfluff and squawk through the ``bench`` extra), or directly:

    python bench/lint.py                       # 2,000 files; sqlfluff takes minutes
    python bench/lint.py --files 200 --repeat 3
    python bench/lint.py --json                # one JSON object on stdout, nothing else
    python bench/lint.py --backout-cmd "python -m backout"

Progress and install hints go to stderr. The exit code is 1 when backout itself fails to run, or
with ``--check`` when a goal fails; otherwise 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shlex
import shutil
import string
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = REPO / ".bench" / "lint"
BANNER = "-- " + "=" * 76
MAX_PER_FOLDER = 999
MAX_FILES = len(string.ascii_lowercase) * MAX_PER_FOLDER
INSTALL_HINT = "pip install -e '.[bench]'  (installs both sqlfluff and squawk)"
GOALS = {"sqlfluff": 0.05, "squawk": 1.0}
WARM_RUNS = 3
"""backout and squawk run at least this many times (sqlfluff, minutes a run, only ``--repeat``)."""
"""The most backout's wall time may be, as a fraction of each other tool's."""

# ---------------------------------------------------------------------------------------------
# Generating the migration set
# ---------------------------------------------------------------------------------------------

NOUNS = (
    "jobs markets events orders accounts invoices payments shipments sellers listings reviews "
    "payouts carts coupons refunds categories webhooks sessions notifications disputes "
    "warehouses suppliers subscriptions audit_events"
).split()
QUALIFIERS = ("", "seller_", "market_", "partner_", "legacy_", "regional_")
STATUSES = "('pending', 'active', 'failed', 'archived')"
NEW_COLUMNS: tuple[tuple[str, str, str | None, str], ...] = (
    # name, type, default, backfill expression
    ("priority", "SMALLINT", "0", "CASE WHEN status = 'failed' THEN 10 ELSE 0 END"),
    ("impact_score", "NUMERIC(5, 2)", None, "0"),
    ("external_ref", "VARCHAR(64)", None, "'legacy-' || id::text"),
    ("archived_at", "TIMESTAMPTZ", None, "CASE WHEN status = 'archived' THEN updated_at END"),
    ("currency", "CHAR(3)", "'USD'", "'USD'"),
    ("metadata", "JSONB", "'{}'::jsonb", "jsonb_build_object('source', 'backfill')"),
    ("retry_count", "INTEGER", "0", "0"),
    ("region", "TEXT", None, "'eu-west-1'"),
    ("is_flagged", "BOOLEAN", "FALSE", "status = 'failed'"),
    ("last_seen_at", "TIMESTAMPTZ", None, "created_at"),
    ("row_version", "INTEGER", "1", "1"),
)
DOC_LINES = (
    "Reviewed in the migration PR; see docs/decisions.md for the reasoning.",
    "Safe to run on staging during business hours.",
    "Run EXPLAIN ANALYZE on the key queries after applying.",
    "Verify with \\d in psql that the objects exist.",
    "Smoke tests: docs/runbooks/migration_checklist.md.",
    "Coordinate with the backend team before applying to production.",
)


@dataclass(frozen=True)
class Section:
    title: str
    docs: tuple[str, ...]
    statements: tuple[str, ...]


@dataclass(frozen=True)
class Migration:
    description: str
    purpose: str
    sections: tuple[Section, ...]
    rollback: tuple[str, ...]
    warning: str


@dataclass
class Table:
    name: str
    parent: str | None
    added: list[str] = field(default_factory=list)


class Schema:
    """The evolving schema of one folder; each method returns the next migration for it."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.tables: list[Table] = []
        self.names: set[str] = set()
        self.indexes: set[str] = set()
        self.count = 0

    def next(self) -> Migration:
        self.count += 1
        if len(self.tables) < 2:
            return self.create_table()
        kind = self.rng.choices(("create", "column", "index", "backfill"), (3, 3, 2, 2))[0]
        if kind == "column":
            return self.add_column()
        if kind == "index":
            return self.add_index()
        if kind == "backfill":
            return self.backfill()
        return self.create_table()

    def docs(self) -> tuple[str, ...]:
        return tuple(self.rng.sample(DOC_LINES, self.rng.randint(1, 2)))

    def new_table_name(self) -> str:
        name = self.rng.choice(QUALIFIERS) + self.rng.choice(NOUNS)
        base, n = name, 1
        while name in self.names:
            n += 1
            name = f"{base}_{n}"
        self.names.add(name)
        return name

    def index_name(self, table: str, suffix: str) -> str:
        name, n = f"idx_{table}_{suffix}", 1
        while name in self.indexes:
            n += 1
            name = f"idx_{table}_{suffix}_{n}"
        self.indexes.add(name)
        return name

    def create_table(self) -> Migration:
        parent = self.rng.choice(self.tables) if self.tables and self.rng.random() < 0.6 else None
        table = Table(self.new_table_name(), parent.name if parent else None)
        self.tables.append(table)
        t = table.name
        fn, trg = f"set_{t}_updated_at", f"trg_{t}_updated_at"
        index = self.index_name(t, "status_created_at")
        sections = (
            Section(f"TABLE: {t}", self.docs(), (_create_table_sql(table),)),
            Section("TRIGGER: keep updated_at current", self.docs(), _trigger_sql(t, fn, trg)),
            Section(
                "INDEXES",
                ("Most reads filter on status and sort by newest first.",),
                (f"CREATE INDEX IF NOT EXISTS {index} ON {t} (status, created_at DESC);",),
            ),
        )
        rollback = (
            f"DROP INDEX IF EXISTS {index};",
            f"DROP TRIGGER IF EXISTS {trg} ON {t};",
            f"DROP FUNCTION IF EXISTS {fn}();",
            f"DROP TABLE IF EXISTS {t} CASCADE;",
        )
        warning = f"This will delete all {t} data. Backup before rollback."
        return Migration(f"create_{t}", f"Create the {t} table", sections, rollback, warning)

    def add_column(self) -> Migration:
        table = self.rng.choice(self.tables)
        free = [c for c in NEW_COLUMNS if c[0] not in table.added]
        if not free:
            return self.add_index()
        name, sql_type, default, backfill = self.rng.choice(free)
        table.added.append(name)
        t = table.name
        add = f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {name} {sql_type}"
        statements = [add + (f" DEFAULT {default};" if default else ";")]
        statements.append(f"UPDATE {t} SET {name} = {backfill} WHERE {name} IS NULL;")
        if default:
            statements.append(f"ALTER TABLE {t} ALTER COLUMN {name} SET NOT NULL;")
        statements.append(f"COMMENT ON COLUMN {t}.{name} IS 'Added by migration {self.count:03d}';")
        sections = (Section(f"COLUMN: {t}.{name}", self.docs(), tuple(statements)),)
        rollback = (f"ALTER TABLE {t} DROP COLUMN IF EXISTS {name};",)
        warning = f"This will delete all {t}.{name} values. Backup before rollback."
        return Migration(f"alter_{t}_add_{name}", f"Add {name} to {t}", sections, rollback, warning)

    def add_index(self) -> Migration:
        table = self.rng.choice(self.tables)
        t = table.name
        options = [
            ("payload_gin", "USING GIN (payload)"),
            ("pending", "(created_at) WHERE status = 'pending'"),
        ]
        if table.parent:
            options.append(("parent_id", "(parent_id)"))
        options.extend((col, f"({col})") for col in table.added)
        suffix, spec = self.rng.choice(options)
        index = self.index_name(t, suffix)
        sql = f"CREATE INDEX IF NOT EXISTS {index} ON {t} {spec};"
        sections = (Section(f"INDEX: {index}", self.docs(), (sql,)),)
        warning = f"Queries on {t} using this index are slower until it is recreated."
        return Migration(
            f"add_{t}_{suffix}_index",
            f"Index {t} for {suffix.replace('_', ' ')} lookups",
            sections,
            (f"DROP INDEX IF EXISTS {index};",),
            warning,
        )

    def backfill(self) -> Migration:
        table = self.rng.choice(self.tables)
        t, days = table.name, self.rng.choice((30, 90, 180, 365))
        backup = f"{t}_backup_{self.count:03d}"
        where = f"status = 'failed' AND updated_at < NOW() - INTERVAL '{days} days'"
        statements = [
            f"CREATE TABLE {backup} AS SELECT id, status, amount_cents FROM {t} WHERE {where};",
            f"UPDATE {t} SET status = 'archived' WHERE {where};",
        ]
        if table.parent:
            statements.append(
                f"UPDATE {t} AS c SET amount_cents = p.amount_cents FROM {table.parent} AS p "
                "WHERE c.parent_id = p.id AND c.amount_cents = 0;"
            )
        docs = (f"Previous values are preserved in {backup} for the rollback.", *self.docs())
        sections = (Section(f"BACKFILL: {t}", docs, tuple(statements)),)
        rollback = (
            f"UPDATE {t} SET status = b.status, amount_cents = b.amount_cents "
            f"FROM {backup} AS b WHERE {t}.id = b.id;",
            f"DROP TABLE IF EXISTS {backup};",
        )
        warning = f"Changes to these {t} rows made after the backfill are lost. Backup first."
        return Migration(
            f"backfill_{t}_archive_failed_{days}d",
            f"Archive {t} rows failed for over {days} days",
            sections,
            rollback,
            warning,
        )


def _create_table_sql(table: Table) -> str:
    t = table.name
    lines = [f"CREATE TABLE IF NOT EXISTS {t} (", "  id BIGSERIAL PRIMARY KEY,"]
    if table.parent:
        lines.append(
            f"  parent_id BIGINT NOT NULL REFERENCES {table.parent} (id) ON DELETE CASCADE,"
        )
    lines += [
        "  name VARCHAR(255) NOT NULL,",
        "  status TEXT NOT NULL DEFAULT 'pending',",
        "  amount_cents BIGINT NOT NULL DEFAULT 0,",
        "  payload JSONB NOT NULL DEFAULT '{}'::jsonb,",
        "  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),",
        "  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),",
        f"  CONSTRAINT chk_{t}_status CHECK (status IN {STATUSES}),",
        f"  CONSTRAINT chk_{t}_amount CHECK (amount_cents >= 0),",
        f"  CONSTRAINT uq_{t}_name UNIQUE ({'parent_id, ' if table.parent else ''}name)",
        ");",
    ]
    return "\n".join(lines)


def _trigger_sql(table: str, function: str, trigger: str) -> tuple[str, str]:
    body = "\n".join(
        [
            f"CREATE OR REPLACE FUNCTION {function}()",
            "RETURNS TRIGGER AS $$",
            "BEGIN",
            "  NEW.updated_at = NOW();",
            "  RETURN NEW;",
            "END;",
            "$$ LANGUAGE plpgsql;",
        ]
    )
    create = "\n".join(
        [
            f"CREATE TRIGGER {trigger}",
            f"  BEFORE UPDATE ON {table}",
            "  FOR EACH ROW",
            f"  EXECUTE FUNCTION {function}();",
        ]
    )
    return body, create


def render(version: int, m: Migration, phase: int) -> tuple[str, str]:
    """The file name and text of migration ``m`` in the strategy's format."""
    name = f"{version:03d}_{m.description}.sql"
    lines = [
        f"-- Migration: {name}",
        f"-- Purpose: {m.purpose}",
        f"-- Phase: Phase {phase}",
        f"-- Checklist: checklist.txt item {phase}.{version}",
        "",
    ]
    for s in m.sections:
        lines += [BANNER, f"-- {s.title}", BANNER, *(f"-- {d}" for d in s.docs), ""]
        for statement in s.statements:
            lines += [statement, ""]
    lines += [BANNER, "-- ROLLBACK", BANNER, "-- To rollback this migration:"]
    lines += [f"--   {r}" for r in m.rollback]
    lines += ["--", f"-- WARNING: {m.warning}", ""]
    return name, "\n".join(lines)


def generate(workdir: Path, files: int, seed: int) -> tuple[list[str], list[str]]:
    """Write ``files`` migrations under ``workdir``; return its folders and files, relative."""
    n_folders = max(3, math.ceil(files / MAX_PER_FOLDER))
    for old in workdir.glob("set_?"):
        shutil.rmtree(old)
    rng = random.Random(seed)
    folders, paths = [], []
    for i in range(n_folders):
        folder = f"set_{string.ascii_lowercase[i]}"
        count = files // n_folders + (1 if i < files % n_folders else 0)
        (workdir / folder).mkdir(parents=True)
        folders.append(folder)
        schema = Schema(rng)
        for version in range(1, count + 1):
            name, text = render(version, schema.next(), phase=1 + 4 * (version - 1) // count)
            (workdir / folder / name).write_text(text, encoding="utf-8")
            paths.append(f"{folder}/{name}")
    return folders, paths


# ---------------------------------------------------------------------------------------------
# Running the tools
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    name: str
    argv: tuple[str, ...]
    display: str
    """The command as shown in the report (squawk's thousands of file names are summarised)."""
    version_argv: tuple[str, ...]
    ok_codes: frozenset[int]
    """Exit codes of a good run: a clean result or "found problems", not "the tool broke"."""


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mib: float
    floor_mib: float
    """This script's own peak RSS when the child started: see :func:`run_once`."""
    exit_code: int


@dataclass
class Result:
    tool: str
    command: str
    version: str = ""
    runs: list[Run] = field(default_factory=list)
    problem: str = ""
    """Why the tool was skipped or failed; empty after good runs."""
    installed: bool = True

    @property
    def best(self) -> Run | None:
        return None if self.problem or not self.runs else min(self.runs, key=lambda r: r.seconds)

    def as_json(self, files: int) -> dict[str, Any]:
        best = self.best
        return {
            "command": self.command,
            "version": self.version,
            "status": "ok" if best else ("failed" if self.installed else "skipped"),
            "problem": self.problem or None,
            "best_seconds": best.seconds if best else None,
            "files_per_second": files / best.seconds if best else None,
            "peak_rss_mib": max(r.peak_rss_mib for r in self.runs) if self.runs else None,
            "peak_rss_at_floor": (
                all(r.peak_rss_mib <= r.floor_mib for r in self.runs) if self.runs else None
            ),
            "exit_code": best.exit_code if best else None,
            "runs_seconds": [r.seconds for r in self.runs],
        }


def find_executable(name: str) -> str | None:
    """``name`` beside the running interpreter (its venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def backout_prefix(override: str | None) -> list[str]:
    if override:
        return shlex.split(override)
    venv = REPO / ".venv" / "bin" / "backout"
    if venv.is_file():
        return [str(venv)]
    found = find_executable("backout")
    return [found] if found else [sys.executable, "-m", "backout"]


def tools(
    backout: list[str], folders: list[str], files: list[str]
) -> tuple[list[Tool], dict[str, str]]:
    """The tools found, and for each missing one the line that says how to install it."""
    argv = (*backout, "lint", "--format", "json", *folders)
    found = [Tool("backout", argv, shlex.join(argv), (*backout, "--version"), frozenset({0, 3}))]
    missing: dict[str, str] = {}
    sqlfluff, squawk = find_executable("sqlfluff"), find_executable("squawk")
    if sqlfluff:
        lint = ("lint", "--dialect", "postgres", "--disable-progress-bar", "--nofail")
        argv = (sqlfluff, *lint, *folders)
        found.append(
            Tool("sqlfluff", argv, shlex.join(argv), (sqlfluff, "--version"), frozenset({0, 1}))
        )
    else:
        missing["sqlfluff"] = f"sqlfluff not found; skipping it. Install it with: {INSTALL_HINT}"
    if squawk:
        display = f"{shlex.quote(squawk)} <{len(files)} files>"
        found.append(
            Tool("squawk", (squawk, *files), display, (squawk, "--version"), frozenset({0, 1}))
        )
    else:
        missing["squawk"] = f"squawk not found; skipping it. Install it with: {INSTALL_HINT}"
    return found, missing


def version(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return lines[0] if lines else "unknown"


def run_once(tool: Tool, workdir: Path) -> Run:
    """Run ``tool`` once in ``workdir``, its output kept in files beside the generated set.

    ``os.wait4`` gives this child's own resource usage, including the peak RSS of the largest
    process in its tree (sqlfluff's worker processes too), unlike ``RUSAGE_CHILDREN``, whose
    ``ru_maxrss`` is a maximum over every child so far and cannot be differenced.

    The kernel starts a child's ``ru_maxrss`` at the peak RSS of the process it was forked from
    (this script), so a tool that stays below that floor reports the floor; the report says so.
    """
    out_dir = workdir / "output"
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        (out_dir / f"{tool.name}.stdout").open("wb") as out,
        (out_dir / f"{tool.name}.stderr").open("wb") as err,
    ):
        floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        proc = subprocess.Popen(
            tool.argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return Run(seconds, usage.ru_maxrss / scale, floor / scale, proc.returncode)


def stderr_tail(tool: Tool, workdir: Path, lines: int = 5) -> str:
    path = workdir / "output" / f"{tool.name}.stderr"
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return " | ".join(text.strip().splitlines()[-lines:])


def measure(found: list[Tool], missing: dict[str, str], workdir: Path, repeat: int) -> list[Result]:
    """Run every tool ``repeat`` times, interleaved so that a noisy moment hits all of them."""
    results = {
        name: Result(name, "", problem=hint, installed=False) for name, hint in missing.items()
    }
    for hint in missing.values():
        progress(hint)
    for t in found:
        results[t.name] = Result(t.name, t.display, version(t.version_argv))
    for r in range(1, repeat + 1):
        for t in found:
            result = results[t.name]
            if result.problem:
                continue
            progress(f"run {r}/{repeat}: {t.name} ...")
            try:
                run = run_once(t, workdir)
            except OSError as exc:
                result.problem = f"could not start {t.argv[0]}: {exc}"
                continue
            result.runs.append(run)
            if run.exit_code not in t.ok_codes:
                tail = stderr_tail(t, workdir)
                result.problem = f"exit code {run.exit_code}: {tail or 'no output on stderr'}"
            progress(f"  {run.seconds:.3f} s, exit {run.exit_code}")
    return [results[name] for name in ("backout", "sqlfluff", "squawk") if name in results]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------


def ratios(results: list[Result]) -> dict[str, dict[str, Any]]:
    """backout's best wall time over each other tool's, against its goal."""
    backout = results[0].best
    out: dict[str, dict[str, Any]] = {}
    for other in results[1:]:
        theirs = other.best
        ratio = backout.seconds / theirs.seconds if backout and theirs else None
        goal = GOALS[other.tool]
        verdict = "n/a" if ratio is None else ("PASS" if ratio <= goal else "FAIL")
        out[f"backout/{other.tool}"] = {"ratio": ratio, "goal": goal, "verdict": verdict}
    return out


def cold_ratio(results: list[Result]) -> dict[str, Any]:
    """backout's first run (no cache) and its ratio to squawk's best (reported, no goal)."""
    backout = results[0]
    cold = backout.runs[0].seconds if backout.runs else None
    squawk = next((r.best for r in results if r.tool == "squawk"), None)
    ratio = cold / squawk.seconds if cold is not None and squawk else None
    return {"seconds": cold, "ratio_to_squawk": ratio}


def report_text(results: list[Result], summary: dict[str, Any]) -> str:
    files = summary["files"]
    lines = [
        f"backout lint benchmark: {files} files in {len(summary['folders'])} folders "
        f"({summary['workdir']}), seed {summary['seed']}, best of {summary['repeat']} run(s) "
        f"(backout and squawk: of at least {WARM_RUNS}, backout's first cold)",
        "",
        f"{'tool':<10}{'wall (s)':>10}{'files/s':>11}{'peak RSS (MiB)':>16}{'exit':>6}  version",
    ]
    floored = False
    for r in results:
        data = r.as_json(files)
        if data["status"] != "ok":
            lines.append(f"{r.tool:<10}{data['status']:>10}  {r.problem}")
            continue
        rss = f"{data['peak_rss_mib']:.1f}"
        if data["peak_rss_at_floor"]:
            rss, floored = f"<= {rss}", True
        lines.append(
            f"{r.tool:<10}{data['best_seconds']:>10.3f}{data['files_per_second']:>11.1f}"
            f"{rss:>16}{data['exit_code']:>6}  {r.version}"
        )
    if floored:
        lines.append(
            "(<= : the tool stayed below this script's own peak RSS, where a child's count starts)"
        )
    lines.append("")
    for name, ratio in summary["ratios"].items():
        value = "n/a" if ratio["ratio"] is None else f"{ratio['ratio']:.4f}"
        lines.append(f"{name:<18}{value:>10}   goal <= {ratio['goal']:<5} {ratio['verdict']}")
    cold = summary["backout_cold"]
    if cold["seconds"] is not None:
        ratio = cold["ratio_to_squawk"]
        versus = "" if ratio is None else f", {ratio:.4f} of squawk's best"
        lines.append(f"backout cold (no .backout/cache): {cold['seconds']:.3f} s{versus}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time backout lint against sqlfluff and squawk on generated migrations."
    )
    parser.add_argument("--files", type=int, default=2000, help="migrations to generate (2000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool; the best counts (1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the generator (0)")
    parser.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR, help="where files go (.bench/lint)"
    )
    parser.add_argument(
        "--backout-cmd",
        help="command prefix for backout, e.g. 'python -m backout' (default: the repo's .venv, "
        "then beside this Python, then PATH, then python -m backout)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal fails")
    args = parser.parse_args(argv)
    if args.files < 1 or args.repeat < 1:
        parser.error("--files and --repeat must be at least 1")
    if args.files > MAX_FILES:
        parser.error(f"--files is at most {MAX_FILES} (26 folders of {MAX_PER_FOLDER})")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir: Path = args.workdir.resolve()
    progress(f"generating {args.files} migrations in {workdir} ...")
    folders, files = generate(workdir, args.files, args.seed)
    found, missing = tools(backout_prefix(args.backout_cmd), folders, files)
    shutil.rmtree(workdir / ".backout", ignore_errors=True)  # backout's first run is cold
    results = measure(found, missing, workdir, args.repeat)
    quick = [t for t in found if t.name in ("backout", "squawk")]
    extra = {r.tool: r for r in measure(quick, {}, workdir, max(0, WARM_RUNS - args.repeat))}
    for r in results:
        if r.tool in extra and not r.problem:
            r.runs.extend(extra[r.tool].runs)
            r.problem = extra[r.tool].problem
    summary: dict[str, Any] = {
        "files": args.files,
        "folders": folders,
        "workdir": str(workdir),
        "seed": args.seed,
        "repeat": args.repeat,
        "tools": {r.tool: r.as_json(args.files) for r in results},
        "ratios": ratios(results),
        "backout_cold": cold_ratio(results),
    }
    print(json.dumps(summary, indent=2) if args.json else report_text(results, summary))
    if results[0].best is None:
        return 1
    failed = any(r["verdict"] == "FAIL" for r in summary["ratios"].values())
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
