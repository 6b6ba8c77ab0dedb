"""The objects a database holds as PostgreSQL names them: found from what a statement names,
followed through pg_depend, and never waiting for a lock to do so."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from backout.database.objects import (
    identify,
    lock_holders,
    reach,
    relation_sizes,
    resolve,
    snapshot,
)
from backout.migrations.objects import ObjectKind, identity, removals
from backout.migrations.statements import split
from tests import pg
from tests.migrations.test_objects import CREATED, DROPS

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def objects_url(postgres_server: pg.Server, template_database: str) -> Iterator[str]:
    name = f"{template_database}_resolve"
    with pg.scratch_database(
        postgres_server.url, name, template=template_database, setup=CREATED
    ) as url:
        yield url


@pytest.mark.parametrize("sql", DROPS)
def test_what_a_drop_names_is_found_under_the_name_postgresql_gives_it(
    objects_url: str, sql: str
) -> None:
    (statement,) = split(sql)
    with psycopg.connect(objects_url, autocommit=True) as conn:
        for removal in removals(statement):
            address = resolve(conn, removal.obj)
            assert address is not None, removal.obj
            found = identify(conn, address)
            assert found is not None
            kind, name = identity(removal.obj)
            if removal.obj.kind in (ObjectKind.FUNCTION, ObjectKind.PROCEDURE):
                assert found.identity.startswith(name.split("(")[0] + "(")
            else:
                assert (found.type, found.identity) == (kind, name)


def test_an_object_that_does_not_exist_is_not_found(objects_url: str) -> None:
    (statement,) = split("DROP TABLE IF EXISTS nowhere, app.nothing")
    with psycopg.connect(objects_url, autocommit=True) as conn:
        assert [resolve(conn, r.obj) for r in removals(statement)] == [None, None]


def test_a_snapshot_lists_the_applications_objects_and_leaves_out_the_ignored(
    objects_url: str,
) -> None:
    with psycopg.connect(objects_url, autocommit=True) as conn:
        found = {k.describe() for k in snapshot(conn, {"accounts"})}
    assert "table app.orders" in found
    assert "table column app.orders.account_id" in found
    assert 'trigger "Touch Accounts" on public.accounts' not in found
    assert "table public.accounts" not in found
    assert "index public.accounts_pk" not in found
    assert not any(item.startswith("type public._") for item in found)  # no array types


def test_nothing_waits_behind_a_table_another_session_locked(objects_url: str) -> None:
    """The blast radius is measured while the tables may be locked: a lock wait would fail
    here at once (lock_timeout), so passing proves none is asked for."""
    (statement,) = split("ALTER TABLE app.orders DROP COLUMN account_id CASCADE")
    with psycopg.connect(objects_url) as holder:
        holder.execute("LOCK TABLE app.orders, accounts IN ACCESS EXCLUSIVE MODE")
        with psycopg.connect(objects_url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '50ms'")
            (removal,) = removals(statement)
            address = resolve(conn, removal.obj)
            assert address is not None
            reached = {r.key.describe() for r in reach(conn, [address])}
            sizes = relation_sizes(conn, ["app.orders"])
            holders = lock_holders(conn, ["app.orders"])
    assert "table column app.orders.account_id" in reached
    assert 'index app."Orders By Account"' in reached
    assert set(sizes) == {"app.orders"}
    assert [(h.mode, h.granted) for h in holders] == [("AccessExclusiveLock", True)]
