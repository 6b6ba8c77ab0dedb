"""A fleet on one server: databases cloned from templates, for the fleet tests (and the
fleet fault tests and bench/fleet.py).

:func:`fleet_templates` applies the sample migrations once to a template database (and once
more up to 005 only: a target where 006 was never applied), seeded with a job whose priority
the rollback of 006 destroys. Every target is ``CREATE DATABASE .. TEMPLATE`` of one of them,
which copies files instead of applying the migrations again: a module makes the templates once
and each test clones the targets it changes. :func:`fleet_project` is a project (the sample
migrations committed in git, as the emergency tests use) whose targets are named ``t01``,
``t02``... Every database is dropped at the end.
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
import pytest

from backout.config import load_settings
from backout.database.connection import Target
from backout.operations.apply import apply
from tests import pg
from tests.incident_project import ENGINEER, committed_project

SEED = "INSERT INTO jobs (kind, payload, priority) VALUES ('payout', '{\"user\": 7}', 5);\n"
"""A row whose priority the rollback of 006 destroys (and the backup keeps)."""
SEED_BEFORE_006 = "INSERT INTO jobs (kind, payload) VALUES ('payout', '{\"user\": 7}');\n"
PASSWORD = "fleet-s3cret"
"""Written into every target's URL: the server trusts the test user, so it is never needed,
and it must never appear in an output, a postmortem, a backup or a commit."""


@dataclass(frozen=True)
class FleetTemplates:
    """Template databases: the sample migrations all applied, and applied up to 005."""

    server_url: str
    applied: str
    before_006: str


def _unique(kind: str) -> str:
    return f"backout_fleet_{kind}_{os.getpid()}_{secrets.token_hex(4)}"


@contextmanager
def fleet_templates(root: Path, server_url: str) -> Iterator[FleetTemplates]:
    """The templates, made with the sample migrations of a project at ``root``."""
    committed_project(root)
    settings = load_settings(root, environ={})
    made: list[str] = []
    try:
        for up_to in (None, "005"):
            name = _unique("tpl")
            pg.create_database(server_url, name, template="template0")
            made.append(name)
            url = pg.with_database(server_url, name)
            apply(settings, Target(url), ENGINEER, to=up_to)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(SEED if up_to is None else SEED_BEFORE_006)
        yield FleetTemplates(server_url, made[0], made[1])
    finally:
        for name in made:
            pg.drop_database(server_url, name)


@dataclass
class FleetProject:
    """A committed project and its fleet's databases, by target name."""

    root: Path
    templates: FleetTemplates
    urls: dict[str, str] = field(default_factory=dict)
    """Each target's URL (password included), in the fleet's order."""
    databases: list[str] = field(default_factory=list)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.urls)

    def add(self, count: int, *, applied: bool = True) -> tuple[str, ...]:
        """``count`` more targets, cloned from the template with 006 applied (or without)."""
        template = self.templates.applied if applied else self.templates.before_006
        added = []
        for _ in range(count):
            database = _unique("t")
            pg.create_database(self.templates.server_url, database, template=template)
            self.databases.append(database)
            name = f"t{len(self.urls) + 1:02d}"
            url = pg.with_database(self.templates.server_url, database)
            self.urls[name] = with_password(url)
            added.append(name)
        return tuple(added)

    def targets_file(self, extra: Sequence[str] = (), name: str = "targets.txt") -> Path:
        """A targets file naming every target (then ``extra`` lines), in the project."""
        path = self.root / name
        lines = [f"{n} {url}" for n, url in self.urls.items()] + list(extra)
        path.write_text("# the test fleet\n" + "\n".join(lines) + "\n")
        return path

    def rows(self, name: str, query: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.urls[name], autocommit=True) as conn:
            return conn.execute(query).fetchall()


def with_password(url: str) -> str:
    """``url`` with :data:`PASSWORD`, when it has an empty one (the embedded server's)."""
    return url.replace("postgres:@", f"postgres:{PASSWORD}@", 1)


@contextmanager
def fleet_project(root: Path, templates: FleetTemplates) -> Iterator[FleetProject]:
    """A committed project at ``root`` with no target yet; its databases dropped at the end."""
    committed_project(root)
    project = FleetProject(root, templates)
    try:
        yield project
    finally:
        for database in project.databases:
            pg.drop_database(templates.server_url, database)


# -- the fixtures, registered in tests/conftest.py ---------------------------------------------


@pytest.fixture(scope="module")
def fleet_template_databases(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: pg.Server
) -> Iterator[FleetTemplates]:
    """The template databases, made once per test module."""
    with fleet_templates(tmp_path_factory.mktemp("templates"), postgres_server.url) as made:
        yield made


@pytest.fixture
def fleet(
    tmp_path: Path, fleet_template_databases: FleetTemplates, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FleetProject]:
    """A committed project, the working directory, with no target yet (its targets are
    cloned from the module's template databases)."""
    with fleet_project(tmp_path / "project", fleet_template_databases) as project:
        monkeypatch.chdir(project.root)
        for name in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_POSTMORTEMS"):
            monkeypatch.delenv(name, raising=False)
        yield project
