"""History adapters: which migrations are applied, as each migration tool records it.

A folder's history is backout's own table unless configured (``history = "dbmate"``, or
``histories`` by folder) or detected: a table in the database with a tool's default name and
columns. Each adapter lives in its own module and is loaded on use (:data:`ADAPTERS`).
"""

from __future__ import annotations

import importlib
from typing import cast

from backout.database.histories.base import History, Recorded, Trouble

__all__ = ["ADAPTERS", "TOOL_TABLES", "History", "Recorded", "Trouble", "adapter", "tool_names"]

ADAPTERS: dict[str, str] = {
    "backout": "backout.database.histories.backout:BACKOUT",
    "dbmate": "backout.database.histories.dbmate:DBMATE",
    "node-pg-migrate": "backout.database.histories.node_pg_migrate:NODE_PG_MIGRATE",
    "goose": "backout.database.histories.goose:GOOSE",
    "golang-migrate": "backout.database.histories.golang_migrate:GOLANG_MIGRATE",
    "sqlx": "backout.database.histories.sqlx:SQLX",
    "diesel": "backout.database.histories.diesel:DIESEL",
    "flyway": "backout.database.histories.flyway:FLYWAY",
    "liquibase": "backout.database.histories.liquibase:LIQUIBASE",
}
"""Every tool's adapter, as ``module:object``; the order is the order detection tries them
(backout's own first)."""


TOOL_TABLES = (
    "schema_migrations",
    "goose_db_version",
    "pgmigrations",
    "flyway_schema_history",
    "databasechangelog",
    "databasechangeloglock",
    "_sqlx_migrations",
    "__diesel_schema_migrations",
)
"""The tools' own tables under their default names: bookkeeping, never the application's
schema (left out of fingerprints and of the objects a migration creates)."""


def tool_names() -> tuple[str, ...]:
    return tuple(ADAPTERS)


def adapter(tool: str) -> History:
    """The adapter of ``tool`` (one of :data:`ADAPTERS`)."""
    module, name = ADAPTERS[tool].split(":")
    return cast(History, getattr(importlib.import_module(module), name))
