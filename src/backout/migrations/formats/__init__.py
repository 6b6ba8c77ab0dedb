"""Migration formats: the strategy document's, and other tools' (goose, dbmate, golang-migrate,
directories of up/down files, node-pg-migrate, Liquibase formatted SQL, Flyway, sql-migrate).

Each folder has one format, configured (``format`` or ``formats`` in ``[tool.backout]``) or
detected from its files; every format reads into the same model. Modules load on first use.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from backout.errors import ConfigError

if TYPE_CHECKING:  # the formats import the file model, which imports the markers of this package
    from backout.migrations.formats.base import Format

FORMATS: dict[str, str] = {
    "strategy": "backout.migrations.formats.strategy:StrategyFormat",
    "liquibase": "backout.migrations.formats.liquibase:LiquibaseFormat",
    "goose": "backout.migrations.formats.goose:GooseFormat",
    "sql-migrate": "backout.migrations.formats.sql_migrate:SqlMigrateFormat",
    "dbmate": "backout.migrations.formats.dbmate:DbmateFormat",
    "node-pg-migrate": "backout.migrations.formats.node_pg_migrate:NodePgMigrateFormat",
    "golang-migrate": "backout.migrations.formats.golang_migrate:GolangMigrateFormat",
    "directory": "backout.migrations.formats.directory:DirectoryFormat",
    "flyway": "backout.migrations.formats.flyway:FlywayFormat",
}
"""Format name -> ``module:class``; the first that detects a folder wins, ``strategy`` last."""
DEFAULT = "strategy"

_loaded: dict[str, Format] = {}


def get_format(name: str) -> Format:
    """The format called ``name``."""
    if name not in _loaded:
        if name not in FORMATS:
            raise ConfigError(
                f"unknown migration format {name!r}", hint=f"use one of {', '.join(FORMATS)}"
            )
        module, _, attribute = FORMATS[name].partition(":")
        _loaded[name] = getattr(importlib.import_module(module), attribute)()
    return _loaded[name]


def detect(folder: Path) -> str:
    """The format ``folder`` is written in, from its files; ``strategy`` when nothing says."""
    from backout.migrations.formats.sections import detecting_once

    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    with detecting_once():  # the marked formats look at the files once between them
        for name in FORMATS:
            if name != DEFAULT and get_format(name).detects(folder, names):
                return name
    return DEFAULT


def format_of(folder: Path, configured: str | None) -> Format:
    """The format of ``folder``: the configured one, else the detected one."""
    return get_format(configured or detect(folder))
