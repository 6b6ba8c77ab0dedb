"""Git hygiene after an emergency, in a real repository: the backups (production rows) are
ignored by git, and following "Next:" literally switches to ``incident/<id>`` with the
postmortem and the stub there, the engineer's staged, unstaged and untracked work intact."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import psycopg
import pytest

from backout import git as backout_git
from backout.config import load_settings
from backout.postmortems.front_matter import read_front_matter
from tests.incident_project import applied, committed_project
from tests.runner import run as cli

SEED = "INSERT INTO jobs (kind, payload, priority) VALUES ('payout', '{\"user\": 7}', 5);"


def git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=project, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    root = committed_project(tmp_path / "repo")
    applied(load_settings(root, environ={}), database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SEED)
    monkeypatch.chdir(root)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")
    for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS"):
        monkeypatch.delenv(name, raising=False)
    return root


def emergency(project: Path) -> str:
    result = cli("emergency", "006", "--reason", "claims stalled", "--yes", "--no-rehearsal")
    assert result.exit_code == 0, result.stderr
    return result.stdout + result.stderr


def test_the_backups_are_ignored_by_git_and_it_is_said_once(project: Path) -> None:
    tracked_before = git(project, "ls-files")

    output = emergency(project)

    backups = list((project / ".backout/backups").rglob("*.csv*")) + list(
        (project / ".backout/backups").rglob("manifest.json")
    )
    assert backups  # the rows are there, on disk
    status = git(project, "status", "--porcelain", "--untracked-files=all")
    assert ".backout" not in status
    git(project, "add", "-A")
    assert ".backout" not in git(project, "diff", "--cached", "--name-only")
    assert git(project, "ls-files", "--", ".backout") == ""
    assert "/.backout/backups/" in (project / ".git/info/exclude").read_text().splitlines()
    assert git(project, "ls-files") != tracked_before  # add -A staged the incident files ...
    assert git(project, "diff", "HEAD", "--name-only", "--", ".gitignore") == ""  # ... no ignore
    said = "added /.backout/backups/ to .git/info/exclude so backups are never committed"
    assert output.count(said) == 1


def test_the_exclude_line_is_added_once_and_not_when_git_already_ignores_the_folder(
    tmp_path: Path,
) -> None:
    root = committed_project(tmp_path / "repo")
    folder = root / ".backout" / "back*ups"

    assert backout_git.exclude_folder(root, folder) == "/.backout/back\\*ups/"
    assert backout_git.exclude_folder(root, folder) is None
    lines = (root / ".git/info/exclude").read_text().splitlines()
    assert lines.count("/.backout/back\\*ups/") == 1
    (folder / "INC-1").mkdir(parents=True)
    (folder / "INC-1" / "rows.csv").write_text("secret\n")
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""
    outside = tmp_path / "elsewhere"
    assert backout_git.exclude_folder(root, outside) is None


def next_commands(output: str) -> list[str]:
    """The shell commands the "Next:" lines say to run before editing, in order."""
    steps = output[output.index("Next:") :].splitlines()[1:]
    commands = []
    for line in steps:
        found = re.search(r": (rm -- .*|git switch \S+)$", line)
        if found:
            commands.append(found.group(1))
    return commands


def test_following_next_switches_to_the_incident_branch_with_nothing_of_the_engineers_lost(
    project: Path,
) -> None:
    (project / "notes.txt").write_text("untracked\n")
    (project / "migrations/001_create_jobs.sql").write_text("-- edited, unstaged\n")
    (project / "staged.txt").write_text("staged\n")
    git(project, "add", "staged.txt")

    output = emergency(project)

    commands = next_commands(output)
    assert commands[-1].startswith("git switch incident/INC-"), output
    branch = commands[-1].split()[-1]
    for command in commands[:-1]:  # the copies removed: the incident is still listed
        subprocess.run(shlex.split(command), cwd=project, check=True, capture_output=True)
    listed = cli("postmortems", "list", "--all-branches")
    assert listed.exit_code == 0
    assert branch.split("/")[1] in listed.stdout
    subprocess.run(shlex.split(commands[-1]), cwd=project, check=True, capture_output=True)
    assert git(project, "branch", "--show-current").strip() == branch
    on_branch = git(project, "diff", "--name-only", "HEAD~1", "HEAD").split()
    assert len(on_branch) == 2
    for name in on_branch:
        assert (project / name).read_text() == git(project, "show", f"HEAD:{name}")
    postmortem = next(n for n in on_branch if n.startswith("ops/postmortems/"))
    front = read_front_matter((project / postmortem).read_text())
    assert not front.get("steps_pending")  # the committed postmortem: the incident is complete
    # the engineer's work, carried over intact
    assert git(project, "diff", "--cached", "--name-only").split() == ["staged.txt"]
    assert (project / "migrations/001_create_jobs.sql").read_text() == "-- edited, unstaged\n"
    assert (project / "notes.txt").read_text() == "untracked\n"
    # the postmortem filled in and committed as "Next:" says: only the incident's files
    (project / postmortem).write_text((project / postmortem).read_text() + "\nImpact: none.\n")
    commit = re.search(r"there: (git commit .*)$", output, re.MULTILINE)
    assert commit is not None
    subprocess.run(shlex.split(commit.group(1)), cwd=project, check=True, capture_output=True)
    assert git(project, "diff", "--name-only", "HEAD~1", "HEAD").split() == [postmortem]
    assert git(project, "diff", "--cached", "--name-only").split() == ["staged.txt"]
    assert (project / "migrations/001_create_jobs.sql").read_text() == "-- edited, unstaged\n"
