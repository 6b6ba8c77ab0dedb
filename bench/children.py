"""What the bench scripts share: the server they measure on (:func:`server`), and how they
start backout as a process of its own: which command, and in which environment (no BACKOUT_*
setting pointing it elsewhere, and bytecode written, as an installed package has it: with
``PYTHONDONTWRITEBYTECODE`` set every timed run would compile backout's modules again, which no
installed backout does)."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def backout_prefix(override: str | None) -> list[str]:
    """``--backout-cmd`` when given, else the project's venv's ``backout``, else the one beside
    this Python or on PATH, else ``python -m backout``."""
    if override:
        return shlex.split(override)
    for candidate in (REPO / ".venv" / "bin" / "backout", Path(sys.executable).parent / "backout"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    found = shutil.which("backout")
    return [found] if found else [sys.executable, "-m", "backout"]


def child_env(project: Path, drop: Iterable[str] = ()) -> dict[str, str]:
    """This environment for a backout child working on ``project`` (see the module's doc);
    ``drop`` names more variables to leave out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKOUT_")}
    for name in ("PYTHONDONTWRITEBYTECODE", *drop):
        env.pop(name, None)
    env["BACKOUT_CONFIG"] = str(project / "backout.toml")
    return env


@contextmanager
def server(url: str | None) -> Iterator[str]:
    """The server's URL: ``url``, or a new embedded PostgreSQL for the duration."""
    if url:
        yield url
        return
    from backout.database.embedded import embedded_postgres

    with embedded_postgres() as embedded:
        yield embedded
