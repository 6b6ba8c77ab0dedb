"""``backout demo`` (what ``make demo`` runs) plays the whole emergency and checks it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
import typer

from backout.cli import app
from backout.cli.demo import sandbox
from tests.runner import run
from tests.samples import SAMPLES


def test_the_demo_plays_the_emergency_and_every_check_passes() -> None:
    before = (Path.cwd(), os.environ.get("DATABASE_URL"))

    result = run("demo", "--json")

    assert result.exit_code == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["ok"] is True
    assert len(summary["checks"]) == 6
    assert "backout emergency 006" in result.stderr
    assert "review_due:" in result.stderr  # the postmortem was printed
    assert (Path.cwd(), os.environ.get("DATABASE_URL")) == before


def test_every_command_takes_json() -> None:
    def commands(group: Any, prefix: str) -> list[tuple[str, Any]]:
        found = []
        for name, command in group.commands.items():
            if hasattr(command, "commands"):  # a group: postmortems
                found += commands(command, f"{prefix}{name} ")
            else:
                found.append((prefix + name, command))
        return found

    root = typer.main.get_command(app)
    missing = [
        name
        for name, command in commands(root, "")
        if not any("--json" in p.opts for p in command.params)
    ]

    assert missing == []


def test_the_demo_plays_only_the_six_samples_whatever_else_the_folder_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(SAMPLES, checkout / "migrations")
    # what `backout new "add widgets"` run in the checkout leaves behind
    (checkout / "migrations" / "007_add_widgets.sql").write_text("-- Migration: TODO\n")
    monkeypatch.setattr(sandbox, "REPOSITORY", checkout)

    result = run("demo", "--json")

    assert result.exit_code == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["ok"] is True
    assert "007_add_widgets" not in result.stderr


def test_demo_serve_prints_a_url_another_process_can_use_until_it_is_stopped() -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "backout", "demo", "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        # another process: the command line, as the README's recipe uses it
        status = subprocess.run(
            [sys.executable, "-c", SELECT_ONE, url], capture_output=True, text=True, check=False
        )
        assert (status.returncode, status.stdout) == (0, "1\n"), status.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)

    assert server.returncode == 0, stderr
    assert stderr.endswith("backout: the server stopped\n")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)


SELECT_ONE = (
    "import sys, psycopg; print(psycopg.connect(sys.argv[1]).execute('SELECT 1').fetchone()[0])"
)
