"""Real-PostgreSQL fixtures: a server per session, a template, and a fresh database per test.

Set ``BACKOUT_TEST_DATABASE_URL`` to test against a running server (CI uses PostgreSQL 15);
otherwise an embedded server is started on first use and stopped at the end of the session.
A test that asks for ``database_url``, directly or through another fixture, is marked ``db``,
so ``pytest -m db`` runs the database tests only and ``pytest -m "not db"`` needs no server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import pg
from tests.fleet_project import fleet, fleet_template_databases  # noqa: F401  (shared fixtures)
from tests.sample_project import conn, project, settings, target  # noqa: F401  (shared fixtures)

_SESSION = pytest.StashKey[pg.ServerSession]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SESSION] = pg.ServerSession()


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is not None:
        session.close()


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"postgresql: {_server(config).describe()}"]


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)
        if "faults" in item.path.parts:
            item.add_marker(pytest.mark.faults)


def _server(config: pytest.Config) -> pg.Server:
    """The session's server; when there is none, end the run once with the reason and the fix."""
    try:
        return config.stash[_SESSION].server()
    except pg.ServerUnavailableError as exc:
        pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture(scope="session")
def postgres_server(pytestconfig: pytest.Config) -> pg.Server:
    """The server the database tests run against: its URL, origin and version."""
    return _server(pytestconfig)


@pytest.fixture(scope="session")
def template_database(pytestconfig: pytest.Config, postgres_server: pg.Server) -> Iterator[str]:
    """The name of this session's template database, cloned for every test.

    It is copied from ``template0``, so objects someone left in a shared server's ``template1``
    never leak into the tests. Nothing may connect to it: PostgreSQL refuses to clone a database
    that has other sessions.
    """
    name = pytestconfig.stash[_SESSION].template_name()
    pg.create_database(postgres_server.url, name, template="template0")
    yield name
    pg.drop_database(postgres_server.url, name)


@pytest.fixture
def database_url(
    pytestconfig: pytest.Config, postgres_server: pg.Server, template_database: str
) -> Iterator[str]:
    """The URL of a new, empty database for this test alone, dropped after it."""
    name = pytestconfig.stash[_SESSION].database_name()
    pg.create_database(postgres_server.url, name, template=template_database)
    yield pg.with_database(postgres_server.url, name)
    pg.drop_database(postgres_server.url, name)
