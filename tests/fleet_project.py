"""A fleet on one server: N databases cloned from one template, for the fleet tests (and the
fleet fault tests and bench/fleet.py).

The template is a database on which the sample migrations are applied once (up to a given
one); every target is ``CREATE DATABASE .. TEMPLATE`` of it, which copies files and takes a
fraction of what applying the migrations again would. The project is the sample migrations
committed in a git repository (as the emergency tests use), and ``targets.txt`` names the
targets ``t01``, ``t02``... Every database is dropped at the end.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.operations.apply import apply
from tests import pg
from tests.incident_project import ENGINEER, committed_project

SEED = "INSERT INTO jobs (kind, payload, priority) VALUES ('payout', '{\"user\": 7}', 5);\n"
"""A row whose priority the rollback of 006 destroys (and the backup keeps)."""


@dataclass
class FleetProject:
    """The project, the server and the fleet's databases, by target name."""

    root: Path
    settings: Settings
    server_url: str
    urls: dict[str, str] = field(default_factory=dict)
    """Each target's URL, in the fleet's order."""
    databases: list[str] = field(default_factory=list)
    """Every database made (templates too), dropped at the end."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.urls)

    def targets_file(self, name: str = "targets.txt", extra: Sequence[str] = ()) -> Path:
        """A targets file naming every target (and ``extra`` lines), in the project."""
        path = self.root / name
        lines = [f"{n} {url}" for n, url in self.urls.items()] + list(extra)
        path.write_text("# the test fleet\n" + "\n".join(lines) + "\n")
        return path

    def rows(self, name: str, query: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.urls[name], autocommit=True) as conn:
            return conn.execute(query).fetchall()

    def template(self, up_to: str | None = None, *, seed: str = SEED) -> str:
        """A database with the sample migrations applied (up to ``up_to``) and ``seed`` run."""
        name = _unique("tpl")
        pg.create_database(self.server_url, name, template="template0")
        self.databases.append(name)
        url = pg.with_database(self.server_url, name)
        apply(self.settings, Target(url), ENGINEER, to=up_to)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(seed)
        return name

    def add_targets(self, template: str, count: int, start: int | None = None) -> None:
        """``count`` targets cloned from ``template``, named after their place in the fleet."""
        first = len(self.urls) + 1 if start is None else start
        for number in range(first, first + count):
            name = _unique("t")
            pg.create_database(self.server_url, name, template=template)
            self.databases.append(name)
            self.urls[f"t{number:02d}"] = pg.with_database(self.server_url, name)


def _unique(kind: str) -> str:
    return f"backout_fleet_{kind}_{os.getpid()}_{secrets.token_hex(4)}"


@contextmanager
def fleet_project(root: Path, server_url: str) -> Iterator[FleetProject]:
    """An empty fleet in a committed project at ``root``; its databases dropped at the end."""
    committed_project(root)
    project = FleetProject(root, load_settings(root, environ={}), server_url)
    try:
        yield project
    finally:
        for name in reversed(project.databases):
            pg.drop_database(server_url, name)
