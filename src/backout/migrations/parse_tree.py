"""Reading PostgreSQL's parse tree (pglast's JSON form) and spelling names as PostgreSQL does.

Pure helpers shared by :mod:`backout.migrations.locks` and :mod:`backout.migrations.objects`:
the tree of one statement, the relations in it, and names quoted the way ``quote_ident`` quotes
them. The tree's nodes are plain dicts and lists (``Any``); this module and its two users are
the only places that look inside them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from typing import Any

Node = dict[str, Any]

_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz_")
_REST = _FIRST | frozenset("0123456789$")


def parse(sql: str) -> tuple[str, Node]:
    """The node name (``DropStmt``) and the node of the one statement in ``sql``."""
    from pglast.parser import parse_sql_json

    tree = json.loads(parse_sql_json(sql))["stmts"][0]["stmt"]
    kind, node = next(iter(tree.items()))
    return str(kind), node


def unwrap(node: Node) -> Node:
    """``{"RangeVar": {...}}`` -> ``{...}``: a list item's one key names its type."""
    return next(iter(node.values())) if len(node) == 1 else node


def quote_ident(name: str) -> str:
    """``name`` as PostgreSQL's ``quote_ident`` writes it: bare when it can be, else quoted."""
    bare = (
        bool(name)
        and name[0] in _FIRST
        and all(char in _REST for char in name)
        and name not in _quoted_keywords()
    )
    return name if bare else '"' + name.replace('"', '""') + '"'


@functools.cache
def _quoted_keywords() -> frozenset[str]:
    """The keywords ``quote_ident`` quotes (pglast, imported on first use: reading the parse
    tree is not needed by every command)."""
    from pglast.keywords import COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

    return frozenset(RESERVED_KEYWORDS | COL_NAME_KEYWORDS | TYPE_FUNC_NAME_KEYWORDS)


def qualified(parts: Iterable[str]) -> str:
    """``("app", "Mixed Case")`` -> ``app."Mixed Case"``."""
    return ".".join(quote_ident(part) for part in parts)


def split_qualified(name: str) -> tuple[str, ...]:
    """The inverse of :func:`qualified`: ``app."Mixed Case"`` -> ``("app", "Mixed Case")``.

    Bare parts are taken as they are (they come from :func:`qualified`, so already folded).
    """
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    index = 0
    while index < len(name):
        char = name[index]
        if quoted and char == '"' and name[index + 1 : index + 2] == '"':
            current.append('"')
            index += 1
        elif char == '"':
            quoted = not quoted
        elif char == "." and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return tuple(parts)


def strings(items: Iterable[Node]) -> tuple[str, ...]:
    """The values of a list of ``String`` nodes (a qualified name in the tree)."""
    return tuple(str(unwrap(item).get("sval")) for item in items)


def relation(rangevar: Node) -> str:
    """A ``RangeVar``'s name, schema-qualified when the SQL qualifies it, quoted as needed."""
    rel = unwrap(rangevar) if "relname" not in rangevar else rangevar
    parts = [rel.get("catalogname"), rel.get("schemaname"), rel.get("relname")]
    return qualified(str(part) for part in parts if part)


def rangevars(node: Any) -> Iterator[Node]:
    """Every ``RangeVar`` anywhere in ``node``, in tree order."""
    if isinstance(node, dict):
        if "relname" in node:
            yield node
        for value in node.values():
            yield from rangevars(value)
    elif isinstance(node, list):
        for value in node:
            yield from rangevars(value)


def cte_names(node: Any) -> frozenset[str]:
    """The names of every ``WITH`` query in ``node``: not relations, though they look so."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "ctename" in item:
                found.add(str(item["ctename"]))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return frozenset(found)
