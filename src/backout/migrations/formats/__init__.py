"""Migration formats: the strategy document's, and other tools' (goose, dbmate, golang-migrate,
directories of up/down files, node-pg-migrate, Liquibase formatted SQL, Flyway, sql-migrate).

Each folder has one format, configured (``format`` or ``formats`` in ``[tool.backout]``) or
detected from its files; every format reads into the same model. Modules load on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
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


@dataclass
class Detection:
    """What one :func:`detect` has read: each file's bytes, read once for every format that
    looks at them, and the marked format of each folder (see ``sections.detected``)."""

    data: dict[Path, bytes | None] = field(default_factory=dict)
    marked: dict[Path, str | None] = field(default_factory=dict)


_detection: ContextVar[Detection | None] = ContextVar("_detection", default=None)


@contextmanager
def detecting_once() -> Iterator[Detection]:
    """Within it, each file a format's detection reads is read once, and each folder's marked
    format worked out once: :func:`detect` asks the formats in turn, several of which read
    every file of the folder."""
    detection = Detection()
    token = _detection.set(detection)
    try:
        yield detection
    finally:
        _detection.reset(token)


def detection() -> Detection | None:
    """The detection in progress, if any."""
    return _detection.get()


def file_bytes(path: Path) -> bytes | None:
    """``path``'s bytes, ``None`` when it cannot be read; read once within
    :func:`detecting_once`."""
    current = _detection.get()
    if current is not None and path in current.data:
        return current.data[path]
    try:
        data: bytes | None = path.read_bytes()
    except OSError:
        data = None
    if current is not None:
        current.data[path] = data
    return data


def detect(folder: Path) -> str:
    """The format ``folder`` is written in, from its files; ``strategy`` when nothing says."""
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    with detecting_once():  # each file read once for all the formats that look at it
        for name in FORMATS:
            if name != DEFAULT and get_format(name).detects(folder, names):
                return name
    return DEFAULT


def format_of(folder: Path, configured: str | None) -> Format:
    """The format of ``folder``: the configured one, else the detected one."""
    return get_format(configured or detect(folder))
