"""Several databases of one server, for the fleet tests: each cloned from the session's template
and dropped after the test, named after the test's own database so concurrent runs never meet.

A test module imports the fixture: ``from tests.fleets.fleet_databases import databases``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from tests import pg

Databases = Callable[[int], list[str]]


@pytest.fixture
def databases(
    postgres_server: pg.Server, template_database: str, database_url: str
) -> Iterator[Databases]:
    """``databases(n)``: the URLs of ``n`` new empty databases (the first is ``database_url``'s
    own database, the others its siblings)."""
    base = str(conninfo_to_dict(database_url)["dbname"])
    made: list[str] = []

    def make(count: int) -> list[str]:
        urls = [database_url]
        for n in range(2, count + 1):
            name = f"{base}_t{n}"
            pg.create_database(postgres_server.url, name, template=template_database)
            made.append(name)
            urls.append(pg.with_database(postgres_server.url, name))
        return urls

    yield make
    for name in made:
        pg.drop_database(postgres_server.url, name)


def targets_file(folder: Path, lines: dict[str, str]) -> Path:
    """A targets file of ``name url`` lines."""
    path = folder / "fleet.txt"
    path.write_text("".join(f"{name} {url}\n" for name, url in lines.items()), encoding="utf-8")
    return path
