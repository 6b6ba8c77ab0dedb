"""Redaction: what backout shows or writes holds no password and no other session's data.

- :func:`redact` replaces with ``***`` the password of every PostgreSQL URL in a text (any
  scheme case, any character in the password, even unencoded), and the value of every
  ``password=`` conninfo or query parameter. Given the URLs in use, it also removes their
  passwords wherever they appear: libpq's own errors may quote them (a password with a space).
- :func:`normalize_query` turns another session's SQL, as ``pg_stat_activity`` shows it, into
  its shape: literals replaced by placeholders ``$1``, ``$2``... as pg_stat_statements does,
  comments dropped; text that does not scan is cut before its first literal.

Every module may use it (the postmortem writer, the database layer, the command line): it
imports nothing of backout, and pglast only when a query is normalised.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

MASK = "***"

_SCHEME = r"postgres(?:ql)?(?:\+[a-z0-9]+)?://"
# After the "@" that ends a password: a host (no "@", no space), an optional query, then the end
# of the URL. The password is the shortest text before such an "@": an unencoded "@" in it
# stays hidden. It may hold spaces (but no quotes) only when its first word has no "/" (so
# "host:5432/db and ada@example.com" is not read as a password).
_URL_PASSWORD = re.compile(
    rf"(?P<head>{_SCHEME}[^\s:/@?#]*):(?P<password>\S*?|[^\s/\"']*\s[^\n\"']*?)@"
    r"(?=[^@\s?]*(?:\?\S*)?(?:\s|$))",
    re.IGNORECASE | re.MULTILINE,
)
_PARAM_PASSWORD = re.compile(
    r"(?P<key>password\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*(?:'|$)|\"(?:[^\"\\]|\\.)*(?:\"|$)|(?:\\.|[^\s&'\"\\])+)",
    re.IGNORECASE | re.MULTILINE,
)
# libpq quotes the part of a URL it cannot read: that part may be (a piece of) the password.
_LIBPQ_QUOTES = re.compile(
    r"(?P<key>(?:unexpected spaces found in|invalid percent-encoded token:|"
    r"invalid URI query parameter:|invalid integer value) )\"[^\"\n]*\"",
    re.IGNORECASE,
)
# ... and a host it cannot resolve: what comes before an "@" in it is the end of a password.
_HOST_WITH_AT = re.compile(r"(?P<key>host (?:name )?(?P<quote>['\"]))[^'\"\n]*@", re.IGNORECASE)
_SEPARATORS = re.compile(r"[@/?#:\s]+")
SHORTEST_SECRET = 3
"""Passwords (and pieces of them) shorter than this are masked only where a URL or conninfo
shows them, not wherever the letters appear in a message."""


def redact(text: str, *urls: str | None) -> str:
    """``text`` with every password in a database URL or conninfo replaced by ``***``, and
    every password of ``urls`` (the URLs in use) masked wherever it appears."""
    known = set().union(*(passwords(url) for url in urls if url))
    for secret in sorted(known, key=len, reverse=True):
        if len(secret) >= SHORTEST_SECRET:
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)
    text = _PARAM_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", text)
    text = _LIBPQ_QUOTES.sub(lambda m: f'{m["key"]}"{MASK}"', text)
    return _HOST_WITH_AT.sub(lambda m: f"{m['key']}{MASK}@", text)


def redact_values(value: object) -> Any:
    """``value`` with :func:`redact` applied to every string in it, in lists and dicts too."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_values(item) for item in value]
    return value


def passwords(url: str) -> set[str]:
    """The passwords ``url`` may carry: as written and percent-decoded, as libpq reads them (up
    to the first ``@``) and as the person meant them (up to the last), with their pieces."""
    found: set[str] = set()
    scheme = re.match(rf"\s*{_SCHEME}", url, re.IGNORECASE)
    if scheme and "@" in url:
        rest = url[scheme.end() :]
        libpq = re.split(r"[@/]", rest, maxsplit=1)[0] if "@" in rest else ""
        for userinfo in (rest.rsplit("@", 1)[0], libpq):
            if ":" in userinfo:
                found.add(userinfo.split(":", 1)[1])
    for match in _PARAM_PASSWORD.finditer(url):
        value = match["value"]
        found.add(value[1:-1] if value[:1] in "'\"" and value[-1:] == value[:1] else value)
    pieces = {piece for secret in found for piece in _SEPARATORS.split(secret)}
    return {s for s in found | pieces | {unquote(s) for s in found} if s}


LITERALS = frozenset({"SCONST", "USCONST", "BCONST", "XCONST", "ICONST", "FCONST"})
COMMENTS = frozenset({"SQL_COMMENT", "C_COMMENT"})
WITHHELD = "(query text withheld)"
_LITERAL_START = re.compile(r"['\"$\\]|--|/\*")


def normalize_query(query: str) -> str:
    """``query`` with its literals replaced by ``$n`` placeholders and its comments dropped,
    on one line; when it does not scan (cut mid-literal), the part before its first literal,
    normalised, then ``…``."""
    try:
        return _normalized(query)
    except Exception:  # pglast's scanner refuses it: keep only what cannot hold a literal
        cut = _LITERAL_START.search(query)
        prefix = query[: cut.start()] if cut else query
        try:
            shape = _normalized(prefix)
        except Exception:
            return WITHHELD
        return f"{shape} …" if shape else WITHHELD


def _normalized(query: str) -> str:
    from pglast import parser

    tokens = parser.scan(query)
    used = [int(query[t.start + 1 : t.end + 1]) for t in tokens if t.name == "PARAM"]
    number = max(used, default=0)
    out: list[str] = []
    end: int | None = None
    for token in tokens:
        if token.name in COMMENTS:
            continue
        if end is not None and token.start > end + 1:
            out.append(" ")
        if token.name in LITERALS:
            number += 1
            out.append(f"${number}")
        else:
            out.append(" ".join(query[token.start : token.end + 1].split()))
        end = token.end
    return "".join(out)
