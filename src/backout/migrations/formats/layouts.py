"""New migration files in each format's layout: what ``backout new`` and the emergency's
fix-forward stub write in a folder that is not in the strategy format. Pure: names and text out.

The forward part holds the given comment lines (the header, the ``BACKOUT-STUB`` placeholder);
the down part is left for the author, which lint reports until it is written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from backout.migrations.versions import version_key

_LEADING = re.compile(r"\d+")

DOWN_NOTE = "-- Write the SQL that undoes this migration here."

_MARKED = {
    "goose": ("-- +goose Up", "-- +goose Down"),
    "sql-migrate": ("-- +migrate Up", "-- +migrate Down"),
    "dbmate": ("-- migrate:up", "-- migrate:down"),
    "node-pg-migrate": ("-- Up Migration", "-- Down Migration"),
}
TIMESTAMPED = frozenset({"goose", "dbmate", "node-pg-migrate", "sql-migrate", "golang-migrate"})


@dataclass(frozen=True)
class Layout:
    """The files of one new migration, as paths relative to its folder and their text."""

    main: str
    """The file holding the forward part (what the catalog lists as the migration)."""
    files: tuple[tuple[str, str], ...]


def layout(format_name: str, version: str, slug: str, comments: Sequence[str]) -> Layout:
    """The files of a new migration ``version``/``slug`` in ``format_name``'s layout."""
    forward = "".join(f"-- {line}\n" if line else "--\n" for line in comments)
    if format_name in _MARKED:
        up, down = _MARKED[format_name]
        name = f"{version}_{slug}.sql"
        return Layout(name, ((name, f"{up}\n{forward}\n{down}\n{DOWN_NOTE}\n"),))
    if format_name == "golang-migrate":
        up_name = f"{version}_{slug}.up.sql"
        down_file = (f"{version}_{slug}.down.sql", f"{DOWN_NOTE}\n")
        return Layout(up_name, ((up_name, forward), down_file))
    if format_name == "directory":
        folder = f"{version}_{slug}"
        files = ((f"{folder}/up.sql", forward), (f"{folder}/down.sql", f"{DOWN_NOTE}\n"))
        return Layout(files[0][0], files)
    if format_name == "flyway":
        name = f"V{version}__{slug}.sql"
        return Layout(name, ((name, forward), (f"U{version}__{slug}.sql", f"{DOWN_NOTE}\n")))
    if format_name == "liquibase":
        name = f"{version}_{slug}.sql"
        text = f"--liquibase formatted sql\n\n--changeset backout:{slug}\n{forward}"
        return Layout(name, ((name, text),))
    raise ValueError(f"no layout for the {format_name} format")


def next_version(format_name: str, versions: Sequence[str], now: datetime) -> str:
    """The version a new migration of the folder gets: a UTC timestamp where the folder's
    versions are timestamps (or the tool's habit is), else one more than the highest."""
    keys = [version_key(v) for v in versions if version_key(v)]
    highest = max(keys, default=())
    timestamped = (not keys and format_name in TIMESTAMPED) or (
        bool(highest) and highest[0] >= 10**9
    )
    if format_name == "directory":
        return f"{now:%Y-%m-%d-%H%M%S}" if timestamped or not keys else f"{highest[0] + 1:03d}"
    if timestamped:
        stamp = int(f"{now:%Y%m%d%H%M%S}")
        return str(max(stamp, highest[0] + 1 if highest else 0))
    if format_name == "flyway":
        return str(highest[0] + 1 if highest else 1)
    width = max([3, *(len(m.group()) for v in versions if (m := _LEADING.match(v)))])
    return str((highest[0] if highest else 0) + 1).zfill(width)
