"""History adapters: which migrations are applied, as each migration tool records it.

A folder's history is backout's own table unless configured (``history = "dbmate"``, or
``histories`` by folder) or detected: a table in the database with a tool's default name and
columns. Each adapter lives in its own module and is loaded on use (:data:`ADAPTERS`).
"""

from __future__ import annotations

import importlib
from typing import cast

from backout.database.histories.base import History, Recorded, Trouble

__all__ = ["ADAPTERS", "History", "Recorded", "Trouble", "adapter", "tool_names"]

ADAPTERS: dict[str, str] = {
    "backout": "backout.database.histories.backout:BACKOUT",
    "dbmate": "backout.database.histories.dbmate:DBMATE",
    "node-pg-migrate": "backout.database.histories.node_pg_migrate:NODE_PG_MIGRATE",
}
"""Every tool's adapter, as ``module:object``; the order is the order detection tries them
(backout's own first)."""


def tool_names() -> tuple[str, ...]:
    return tuple(ADAPTERS)


def adapter(tool: str) -> History:
    """The adapter of ``tool`` (one of :data:`ADAPTERS`)."""
    module, name = ADAPTERS[tool].split(":")
    return cast(History, getattr(importlib.import_module(module), name))
