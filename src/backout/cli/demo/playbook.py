"""The incident the demo plays, step by step, narrated.

In a temporary folder: a git repository holding the sample migrations, an embedded PostgreSQL 18
with some data, ``backout apply``; then ``006_add_jobs_priority`` breaks production and the
on-call engineer runs ``backout emergency 006``: rehearsed with ``--dry-run``, then for real.
The demo prints the postmortem it opened, the review deadline, the branch it committed and the
backup it took, and checks each of them. Nothing outside the temporary folder is touched.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from backout.cli import main as backout
from backout.cli.demo.checks import Check, checks
from backout.cli.demo.sandbox import (
    ENGINEER,
    database_url,
    git_repository,
    sample_migrations,
    scalar,
    throwaway_project,
)
from backout.database.embedded import embedded_postgres

BROKEN = "006"
STEPS = 6

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

Say = Callable[[str], None]


def _print(text: str) -> None:
    print(text, flush=True)


@dataclass(frozen=True)
class Narrator:
    """Tells each step and runs each ``backout`` command in front of the audience."""

    say: Say

    def step(self, number: int, text: str) -> None:
        self.say("")
        self.say(f"[{number}/{STEPS}] {text}")

    def command(self, *args: str) -> bool:
        """Run ``backout ARGS``; whether it exited 0."""
        self.say("$ backout " + shlex.join(args))
        return backout(list(args)) == 0


def run(say: Say = _print, results: list[Check] | None = None) -> int:
    """Play the incident; 0 when every check passed. ``results`` receives each check."""
    samples = sample_migrations()
    with throwaway_project(samples) as project:
        found = _play(Narrator(say), project, has_git=git_repository(project))
    if found is None:
        return 1
    if results is not None:
        results.extend(found)
    ok = all(passed for _, passed in found)
    say("")
    say("Demo finished: every step of the emergency is recorded." if ok else "Demo FAILED.")
    return 0 if ok else 1


def _play(narrator: Narrator, project: Path, *, has_git: bool) -> list[Check] | None:
    """Every step; the checks, or ``None`` when a command failed on the way."""
    say = narrator.say
    say("backout demo: a migration breaks production; roll it back, open the incident,")
    say("start the fix-forward and set the review deadline, in one command.")
    narrator.step(1, f"A project with the six sample migrations, in {project}")
    if has_git:
        say(f"  (a git repository; the on-call engineer is {ENGINEER[0]})")
    else:
        say("  (git is not installed: the demo runs with --no-git)")
    if not narrator.command("lint"):
        return None
    with (
        embedded_postgres() as url,
        psycopg.connect(url, autocommit=True) as conn,
        database_url(url),
    ):
        jobs = _migrate(narrator, conn)
        if jobs is None:
            return None
        postmortem = _emergency(narrator, project, has_git=has_git)
        if postmortem is None:
            return None
        narrator.step(6, "Check it all: database, files, branch, audit trail")
        narrator.command("status")
        found = checks(conn, project, postmortem, jobs, has_git)
        for text, passed in found:
            say(f"  {'ok  ' if passed else 'FAIL'} {text}")
        return found


def _migrate(narrator: Narrator, conn: psycopg.Connection[Any]) -> int | None:
    """Step 2: apply up to 005, add some data, apply 006; the number of jobs."""
    narrator.step(2, "An embedded " + str(scalar(conn, "SELECT version()")).split(" on ")[0])
    if not narrator.command("apply", "--to", "005", "--yes"):
        return None
    conn.execute(SEED_DATA)
    jobs: int = scalar(conn, "SELECT count(*) FROM jobs")
    narrator.say(f"  (the demo added markets, events and {jobs} jobs)")
    return jobs if narrator.command("apply", "--yes") else None


def _emergency(narrator: Narrator, project: Path, *, has_git: bool) -> Path | None:
    """Steps 3-5: rehearse the emergency, run it, show the postmortem it opened."""
    narrator.step(3, f"{BROKEN} breaks production: rehearse the emergency (nothing is changed)")
    if not narrator.command("emergency", BROKEN, "--reason", "claims stalled", "--dry-run"):
        return None
    narrator.step(4, "Run it: backup, rollback, incident record, fix-forward stub, git branch")
    reason = "job claims stalled after 006: the new index is not used by the workers"
    args = ["emergency", BROKEN, "--reason", reason, "--severity", "SEV2", "--yes"]
    if not narrator.command(*args, *([] if has_git else ["--no-git"])):
        return None
    narrator.step(5, "The postmortem it opened (review due 72 hours after the rollback)")
    postmortems = sorted((project / "ops/postmortems").glob("INC-*.md"))
    if len(postmortems) != 1:
        narrator.say("  no postmortem was written")
        return None
    narrator.say(postmortems[0].read_text(encoding="utf-8"))
    return postmortems[0]
