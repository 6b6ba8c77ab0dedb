"""Scratch databases for rehearsals: created for one run, dropped after it.

With no server given, a new embedded PostgreSQL (the ``embedded`` extra) is started and
stopped; with a server URL, a database ``backout_scratch_<random>`` is created there (the user
needs CREATEDB) and dropped at the end, even when the rehearsal fails.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from backout.database.connection import DatabaseError, connect, first_line, redact
from backout.database.embedded import embedded_postgres

PREFIX = "backout_scratch_"


@contextmanager
def scratch_database(server_url: str | None) -> Iterator[str]:
    """The URL of an empty database that exists for the duration."""
    if server_url is None:
        with embedded_postgres() as url:
            yield url
        return
    name = PREFIX + secrets.token_hex(4)
    with connect(server_url, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise DatabaseError(
                f"cannot create a scratch database on {redact(server_url)}: {first_line(exc)}",
                hint="the user needs CREATEDB, or leave out --scratch-database-url to use the "
                "embedded PostgreSQL",
            ) from None
    try:
        params = conninfo_to_dict(server_url)
        params["dbname"] = name
        yield make_conninfo("", **params)
    finally:
        with connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
