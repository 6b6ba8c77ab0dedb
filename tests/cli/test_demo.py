"""``backout demo`` (what ``make demo`` runs) plays the whole emergency and checks it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from backout.cli import app
from tests.runner import run


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
