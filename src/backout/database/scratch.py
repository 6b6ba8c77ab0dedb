"""Scratch databases for rehearsals: created for one run, dropped after it, and dropped by a
later run when the one that created them was killed.

With no server given, a new embedded PostgreSQL (the ``embedded`` extra) is started and
stopped; with a server URL, a database ``backout_scratch_<pid>_<unix time>_<random>`` is created
there (the user needs CREATEDB) and dropped at the end, even when the rehearsal fails.

While a scratch database exists, the run that created it keeps a connection to the server
named ``backout scratch <database>`` in ``pg_stat_activity``, opened before the database is
created. A killed run's connection ends with it, so every run first drops the scratch databases
that no such connection keeps and no session uses: they were left by killed runs.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from backout.database.connection import DatabaseError, checked_url, connect, first_line, redact
from backout.database.embedded import embedded_postgres

PREFIX = "backout_scratch_"
KEEPER = "backout scratch "
"""The ``application_name`` of the connection that keeps a scratch database, before its name."""
_NAME = re.compile(rf"^{PREFIX}\d+_\d+_[0-9a-f]{{6}}$")


def scratch_name() -> str:
    """A new scratch database's name: the prefix, this process's id, the time, a random part."""
    return f"{PREFIX}{os.getpid()}_{int(time.time())}_{secrets.token_hex(3)}"


@contextmanager
def scratch_database(server_url: str | None) -> Iterator[str]:
    """The URL of an empty database that exists for the duration."""
    if server_url is None:
        with embedded_postgres() as url:
            yield url
        return
    server_url = checked_url(server_url, "the scratch server URL")
    name = scratch_name()
    with connect(server_url, autocommit=True) as keeper:
        keeper.execute("SELECT set_config('application_name', %s, false)", (KEEPER + name,))
        drop_abandoned(keeper)
        _create(keeper, name, server_url)
        try:
            params = conninfo_to_dict(server_url)
            params["dbname"] = name
            yield make_conninfo("", **params)
        finally:
            _drop(keeper, name, server_url)


def drop_abandoned(conn: psycopg.Connection[Any]) -> list[str]:
    """Drop the scratch databases on ``conn``'s server that no run keeps and no session uses
    (their creator was killed); return their names. One that cannot be dropped (in use since,
    or owned by another role) is left for a later run."""
    rows = conn.execute(
        """
        SELECT d.datname FROM pg_database d
         WHERE d.datname LIKE %s
           AND NOT EXISTS (SELECT FROM pg_stat_activity a
                            WHERE a.datname = d.datname OR a.application_name = %s || d.datname)
        """,
        (PREFIX.replace("_", r"\_") + "%", KEEPER),
    ).fetchall()
    dropped = []
    for (name,) in rows:
        if not _NAME.match(name):
            continue  # not named by this version of backout: not known to be abandoned
        try:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        except psycopg.Error:
            continue
        dropped.append(name)
    return dropped


def _create(conn: psycopg.Connection[Any], name: str, server_url: str) -> None:
    try:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise DatabaseError(
            f"cannot create a scratch database on {redact(server_url, server_url)}: "
            f"{first_line(exc, server_url)}",
            hint="the user needs CREATEDB, or leave out --scratch-database-url to use the "
            "embedded PostgreSQL",
        ) from None


def _drop(keeper: psycopg.Connection[Any], name: str, server_url: str) -> None:
    """Drop the run's scratch database, on a new connection if the keeper was lost."""
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    try:
        keeper.execute(statement)
    except psycopg.OperationalError:
        with connect(server_url, autocommit=True) as conn:
            conn.execute(statement)
