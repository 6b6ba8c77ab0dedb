"""``backout demo`` and ``make demo``: the emergency procedure end to end, on a throwaway set-up.

In a temporary folder: a git repository holding the sample migrations, an embedded PostgreSQL 18
with some data, ``backout apply``; then ``006_add_jobs_priority`` breaks production and the
on-call engineer runs ``backout emergency 006``: rehearsed with ``--dry-run``, then for real.
The demo prints the postmortem it opened, the review deadline, the branch it committed and the
backup it took, and checks each of them. Nothing outside the temporary folder is touched.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, LiteralString

import psycopg

from backout.database.embedded import embedded_postgres

REPOSITORY = Path(__file__).resolve().parents[2]
BROKEN = "006"
STEPS = 6
ENGINEER = ("Dana On-Call", "dana@example.com")

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


def sample_migrations() -> Path:
    """The sample migrations: the checkout's ``migrations/`` (``make demo`` runs from one)."""
    folder = REPOSITORY / "migrations"
    if not folder.is_dir():
        from backout.errors import UsageError

        raise UsageError(
            f"the sample migrations are not at {folder}",
            hint="run the demo from a checkout of backout: make demo",
        )
    return folder


def run(say: Say = _print, results: list[tuple[str, bool]] | None = None) -> int:
    """Play the incident; 0 when every check passed. ``results`` receives each check."""
    from backout.cli import main as backout

    def step(number: int, text: str) -> None:
        say("")
        say(f"[{number}/{STEPS}] {text}")

    def command(*args: str) -> int:
        say("$ backout " + shlex.join(args))
        return backout(list(args))

    samples = sample_migrations()
    with tempfile.TemporaryDirectory(prefix="backout-demo-") as folder, _inside(Path(folder)):
        project = Path(folder)
        shutil.copytree(samples, project / "migrations")
        (project / "backout.toml").write_text('migrations = ["migrations"]\n')
        has_git = _git_repository(project)
        say("backout demo: a migration breaks production; roll it back, open the incident,")
        say("start the fix-forward and set the review deadline, in one command.")

        step(1, f"A project with the six sample migrations, in {project}")
        if has_git:
            say(f"  (a git repository; the on-call engineer is {ENGINEER[0]})")
        else:
            say("  (git is not installed: the demo runs with --no-git)")
        if command("lint") != 0:
            return 1

        with (
            embedded_postgres() as url,
            psycopg.connect(url, autocommit=True) as conn,
            _database_url(url),
        ):
            step(2, "An embedded " + str(_scalar(conn, "SELECT version()")).split(" on ")[0])
            if command("apply", "--to", "005", "--yes") != 0:
                return 1
            conn.execute(SEED_DATA)
            jobs = _scalar(conn, "SELECT count(*) FROM jobs")
            say(f"  (the demo added markets, events and {jobs} jobs)")
            if command("apply", "--yes") != 0:
                return 1

            step(3, f"{BROKEN} breaks production: rehearse the emergency (nothing is changed)")
            if command("emergency", BROKEN, "--reason", "claims stalled", "--dry-run") != 0:
                return 1

            step(4, "Run it: backup, rollback, incident record, fix-forward stub, git branch")
            reason = "job claims stalled after 006: the new index is not used by the workers"
            args = ["emergency", BROKEN, "--reason", reason, "--severity", "SEV2", "--yes"]
            if command(*args, *([] if has_git else ["--no-git"])) != 0:
                return 1

            step(5, "The postmortem it opened (review due 72 hours after the rollback)")
            postmortems = sorted((project / "ops/postmortems").glob("INC-*.md"))
            if len(postmortems) != 1:
                say("  no postmortem was written")
                return 1
            say(postmortems[0].read_text(encoding="utf-8"))

            step(6, "Check it all: database, files, branch, audit trail")
            command("status")
            checks = _checks(conn, project, postmortems[0], jobs, has_git, say)
            ok = all(passed for _, passed in checks)
            if results is not None:
                results.extend(checks)
    say("")
    say("Demo finished: every step of the emergency is recorded." if ok else "Demo FAILED.")
    return 0 if ok else 1


def _checks(
    conn: psycopg.Connection[Any],
    project: Path,
    postmortem: Path,
    jobs: int,
    has_git: bool,
    say: Say,
) -> list[tuple[str, bool]]:
    from backout.postmortems.front_matter import read_front_matter

    front = read_front_matter(postmortem.read_text(encoding="utf-8"))
    incident = str(front["id"])
    left = _scalar(
        conn,
        "SELECT count(*) FROM information_schema.columns"
        " WHERE table_name = 'jobs' AND column_name = 'priority'",
    )
    jobs_after = _scalar(conn, "SELECT count(*) FROM jobs")
    audit = conn.execute(
        "SELECT id, action, outcome, details->>'incident' FROM backout_audit_event"
        " ORDER BY id DESC LIMIT 1"
    ).fetchone()
    stub = project / str(front["fix_forward"])
    manifest = project / ".backout/backups" / incident / "manifest.json"
    backed_up = json.loads(manifest.read_text())["items"] if manifest.is_file() else []
    checks = [
        (
            f"jobs.priority is gone ({left} left), all {jobs_after} jobs kept",
            left == 0 and jobs_after == jobs,
        ),
        (
            f"audit event {audit[0] if audit else '?'}: emergency, success, {incident}",
            audit is not None and tuple(audit[1:]) == ("emergency", "success", incident),
        ),
        (f"review due {front['review_due']}", bool(front.get("review_due"))),
        (f"fix-forward stub {stub.relative_to(project)}", stub.is_file()),
        (
            f"backup {manifest.parent.relative_to(project)}: "
            + ", ".join(f"{i['table']} ({i['rows']} rows)" for i in backed_up),
            bool(backed_up),
        ),
    ]
    if has_git:
        files = _git(project, "ls-tree", "-r", "--name-only", f"incident/{incident}").split()
        wanted = {str(postmortem.relative_to(project)), str(stub.relative_to(project))}
        checks.append(
            (f"branch incident/{incident} holds the postmortem and the stub", wanted <= set(files))
        )
    for text, passed in checks:
        say(f"  {'ok  ' if passed else 'FAIL'} {text}")
    return checks


@contextmanager
def _database_url(url: str) -> Iterator[None]:
    """``DATABASE_URL`` set to the embedded server for the commands the demo runs."""
    before = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        yield
    finally:
        if before is None:
            del os.environ["DATABASE_URL"]
        else:
            os.environ["DATABASE_URL"] = before


@contextmanager
def _inside(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _git_repository(project: Path) -> bool:
    """Make ``project`` a git repository with one commit; ``False`` when git is missing."""
    if shutil.which("git") is None:
        return False
    _git(project, "init", "--quiet", "--initial-branch=main")
    _git(project, "config", "user.name", ENGINEER[0])
    _git(project, "config", "user.email", ENGINEER[1])
    _git(project, "add", "--all")
    _git(project, "commit", "--quiet", "--no-verify", "-m", "Add the sample migrations")
    return True


def _git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=project, check=True, capture_output=True, text=True
    ).stdout


def _scalar(conn: psycopg.Connection[Any], query: LiteralString) -> Any:
    row = conn.execute(query).fetchone()
    return row[0] if row else None


if __name__ == "__main__":
    raise SystemExit(run())
