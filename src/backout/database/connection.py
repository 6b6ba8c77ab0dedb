"""Connections: which database (flags, environment variables, named environments), checking
its URL, timeouts, and turning psycopg's errors into backout's.

Every URL that reaches a message, a log line, an audit row or a file goes through :func:`redact`
(:mod:`backout.redaction`); every message made from a psycopg or libpq error is redacted
against the URL in use.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from backout.config import Environment, Settings
from backout.errors import BackoutError, LockTimeoutError, UsageError
from backout.redaction import redact as redact

APPLICATION_NAME = "backout"
DATABASE_URL_ENV = "DATABASE_URL"
CONNECT_TIMEOUT = 10
DEFAULT_LOCK_TIMEOUT = 5.0
"""Seconds a statement may wait for a table lock, unless the command says otherwise."""
CLIENT_CHECK_INTERVAL = 1.0
"""Seconds between the server's checks, while a statement runs or waits, that backout is still
there: when the process is killed, the server cancels what the session was doing and rolls its
transaction back instead of holding (or queueing for) locks until the statement ends."""
MAX_LOCK_WAIT = 3600.0
"""The longest ``--lock-wait`` and ``--lock-timeout`` backout accepts: one hour."""
MAX_STATEMENT_TIMEOUT = 86400.0
"""The longest ``--statement-timeout`` backout accepts: a day."""


class DatabaseError(BackoutError):
    """The database refused or failed something (exit 1); carries the SQLSTATE when there is one."""

    def __init__(self, message: str, *, sqlstate: str | None = None, hint: str | None = None):
        super().__init__(redact(message), hint=hint)
        self.sqlstate = sqlstate


_DENIED = re.compile(r"permission denied for (?P<kind>[a-z ]+?) (?P<name>\S+)$")
_PRIVILEGES = {
    "table": "SELECT, INSERT, UPDATE, DELETE",
    "schema": "USAGE, CREATE",
    "sequence": "USAGE, SELECT, UPDATE",
    "database": "CONNECT, CREATE",
}
_PARAMETER = re.compile(r'invalid value for parameter "(?P<name>[a-z_]+)"')
_OPTIONS = {"lock_timeout": "--lock-timeout", "statement_timeout": "--statement-timeout"}


def translate(exc: psycopg.Error, *urls: str) -> BackoutError:
    """A psycopg error no core function explained, as one redacted line with its exit code: a
    missing privilege names the object and the GRANT that fixes it (exit 1); a setting the
    server refuses names the option (exit 2); a lock wait that timed out exits 5; any other is
    the database failing (exit 1)."""
    message = first_line(exc, *urls)
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate == "42501":
        return DatabaseError(message, sqlstate=sqlstate, hint=_grant_hint(message))
    parameter = _PARAMETER.search(message)
    if sqlstate == "22023" and parameter:
        option = _OPTIONS.get(parameter["name"], parameter["name"])
        return UsageError(
            f"the server refused {option}: {message}", hint=f"give {option} a shorter duration"
        )
    if sqlstate == "55P03":
        return LockTimeoutError(
            f"a lock wait timed out: {message}",
            hint="another session holds a lock backout needs; try again, or raise --lock-timeout",
        )
    if sqlstate is None or sqlstate.startswith(("08", "57P")):
        return DatabaseError(
            f"the database connection failed: {message}",
            sqlstate=sqlstate,
            hint="`backout status` shows what is applied once the server answers",
        )
    return DatabaseError(f"the database refused: {message}", sqlstate=sqlstate)


def _grant_hint(message: str) -> str:
    denied = _DENIED.search(message)
    if denied is None:
        return "connect as a role that owns the object, or grant the role the privilege"
    kind, name = denied["kind"], denied["name"]
    privileges = _PRIVILEGES.get(kind, "ALL")
    return (
        f"connect as the owner of {kind} {name}, or have the owner run: GRANT {privileges} ON "
        f"{kind.upper()} {name} TO <the role in the URL>"
    )


@dataclass(frozen=True)
class Target:
    """The database a command works on, and the named environment it belongs to, if any."""

    url: str
    environment: Environment | None = None
    label: str | None = None
    """Its name in a fleet (``backout.fleets``), which names it everywhere instead."""

    @property
    def display(self) -> str:
        return redact(self.url)

    @property
    def name(self) -> str:
        """Its name in a fleet, or the environment's name, or the redacted URL's host and
        database."""
        if self.label is not None:
            return self.label
        if self.environment is not None:
            return self.environment.name
        try:
            params = conninfo_to_dict(self.url)
        except psycopg.ProgrammingError:
            return "database"
        host = str(params.get("host") or "local")
        return f"{host if not host.startswith('/') else 'local'}/{params.get('dbname', '')}"


def resolve_target(
    settings: Settings,
    environ: Mapping[str, str],
    *,
    database_url: str | None = None,
    env_name: str | None = None,
) -> Target:
    """``--database-url``, or ``--env NAME`` (its configured variable), or ``DATABASE_URL``."""
    if database_url and env_name:
        raise UsageError(
            "both --database-url and --env were given", hint="give one: --env NAME or the URL"
        )
    if database_url:
        return Target(checked_url(database_url, "--database-url"))
    if env_name:
        environment = settings.environments.get(env_name)
        if environment is None:
            known = sorted(settings.environments)
            close = [k for k in known if k.startswith(env_name)] or difflib.get_close_matches(
                env_name, known, n=1
            )
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else (
                    f"configured: {', '.join(known)}"
                    if known
                    else "add [tool.backout.environments.<name>] with url_env"
                )
            )
            raise UsageError(f"unknown environment {env_name!r}", hint=hint)
        url = environ.get(environment.url_env)
        if not url:
            raise UsageError(
                f"environment {env_name!r} takes its database URL from {environment.url_env}, "
                "which is not set",
                hint=f"export {environment.url_env}=postgresql://...",
            )
        return Target(checked_url(url, environment.url_env), environment)
    url = environ.get(DATABASE_URL_ENV)
    if url:
        return Target(checked_url(url, DATABASE_URL_ENV))
    raise UsageError(
        "no database given", hint="pass --database-url URL, --env NAME, or set DATABASE_URL"
    )


URL_HINT = (
    "use postgresql://USER@HOST:PORT/DBNAME, with the password after USER and a colon, "
    "percent-encoded (@ as %40, / as %2F, % as %25, a space as %20), or key=value pairs "
    "such as 'host=HOST dbname=DBNAME'"
)
_POSTGRES_SCHEME = re.compile(r"\s*postgres(?:ql)?://", re.IGNORECASE)


def checked_url(url: str, source: str) -> str:
    """``url`` (from ``source``: the option or variable named in messages) when libpq reads it
    as the person meant it, its scheme in lower case; else a usage error that never shows the
    password: not a URL or conninfo, a space, or an unencoded ``@`` or ``/`` in the user name
    or password (libpq would take a piece of the password for the host or the database)."""
    scheme = _POSTGRES_SCHEME.match(url)
    if scheme:
        rest = url[scheme.end() :].strip()
        _check_address(rest, source)
        url = scheme.group(0).strip().lower() + rest
    elif "://" in url:
        raise UsageError(f"{source} is not a PostgreSQL URL", hint=URL_HINT)
    try:
        conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise UsageError(
            f"{source} is not a PostgreSQL URL or connection string: {first_line(exc, url)}",
            hint=URL_HINT,
        ) from None
    return url


def _check_address(rest: str, source: str) -> None:
    """``rest``: a URL after its ``postgresql://``."""
    if any(c.isspace() for c in rest):
        raise UsageError(f"{source} holds a space", hint=URL_HINT)
    address = rest.split("?", 1)[0]
    at = address.rfind("@")
    if address.count("@") > 1 or "/" in address[: max(at, 0)]:
        raise UsageError(
            f"the database URL in {source} holds an unencoded @ or / in its user name or password",
            hint=URL_HINT,
        )


def connect(
    url: str,
    *,
    autocommit: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    application: str = APPLICATION_NAME,
) -> psycopg.Connection[Any]:
    """A connection named ``backout`` in ``pg_stat_activity``; a one-line error when unreachable.

    Every connection backout opens may wait for a table lock, so each waits at most
    ``lock_timeout`` and has the server check, while a statement runs, that backout is still
    there (:func:`set_timeouts`): a killed backout leaves no backend waiting or holding locks.
    """
    try:
        conninfo = make_conninfo(url, application_name=application, connect_timeout=CONNECT_TIMEOUT)
        conn = psycopg.connect(conninfo, autocommit=autocommit)
        set_timeouts(conn, lock_timeout=lock_timeout)
        if not autocommit:
            conn.commit()
        return conn
    except psycopg.Error as exc:
        raise DatabaseError(
            f"cannot connect to {redact(url, url)}: {first_line(exc, url)}",
            sqlstate=getattr(exc, "sqlstate", None),
            hint="check the URL and that the server is up",
        ) from None


def first_line(exc: BaseException, *urls: str | None) -> str:
    """The first line of ``exc``'s message, redacted (against ``urls``, the URLs in use)."""
    text = str(exc).strip()
    return redact(text.splitlines()[0] if text else type(exc).__name__, *urls)


def set_timeouts(
    conn: psycopg.Connection[Any],
    *,
    lock_timeout: float,
    statement_timeout: float | None = None,
    local: bool = False,
) -> None:
    """``lock_timeout`` (and ``statement_timeout`` when given) in one round trip: for the
    session, or with ``local`` for the current transaction only. A session also gets
    ``client_connection_check_interval`` (PostgreSQL 14+), so that when backout is killed the
    server ends what the session was doing, a lock wait included, instead of keeping its place
    in the queue or its locks. A duration never reaches the server as 0, which means no limit."""
    settings = [("lock_timeout", milliseconds(lock_timeout))]
    if statement_timeout is not None:
        settings.append(("statement_timeout", milliseconds(statement_timeout)))
    if not local and conn.info.server_version >= 140000:
        settings.append(("client_connection_check_interval", milliseconds(CLIENT_CHECK_INTERVAL)))
    calls = sql.SQL(", ").join(
        sql.SQL("set_config({}, {}, {})").format(name, value, local) for name, value in settings
    )
    conn.execute(sql.SQL("SELECT {}").format(calls))


def milliseconds(seconds: float) -> str:
    """A duration as PostgreSQL reads it, never below 1 ms (0 would mean no limit at all)."""
    return f"{max(1, round(seconds * 1000))}ms"


_DURATION = re.compile(r"^\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|min|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(
    text: str, *, option: str = "duration", examples: str = "500ms, 5s, 2m or 1h"
) -> float:
    """``"5s"``, ``"500ms"``, ``"2m"``, ``"30"`` (seconds) -> seconds; the error suggests the
    ``examples`` the option's help gives."""
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"{option} {text!r} is not a duration", hint=f"use e.g. {examples}")
    return float(match["value"]) * _UNITS[match["unit"]]


def parse_limit(text: str, *, option: str, maximum: float) -> float:
    """A duration that bounds a wait: at least 1 ms (PostgreSQL reads 0 as "no limit", and
    backout never waits without one), at most ``maximum`` seconds."""
    seconds = parse_duration(text, option=option)
    if round(seconds * 1000) < 1:
        raise UsageError(
            f"{option} {text!r} is shorter than 1ms, the least backout allows",
            hint=f"give a duration between 1ms and {_spoken(maximum)}, e.g. 5s "
            "(0 would mean no limit)",
        )
    if seconds > maximum:
        raise UsageError(
            f"{option} {text!r} is longer than {_spoken(maximum)}, the most backout allows",
            hint=f"give a duration between 1ms and {_spoken(maximum)}",
        )
    return seconds


def _spoken(seconds: float) -> str:
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds * 1000:g}ms"
