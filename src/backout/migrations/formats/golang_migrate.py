"""golang-migrate: ``<version>_<title>.up.sql`` and ``<version>_<title>.down.sql``, one
migration per version.

Names are matched as golang-migrate's ``source.Parse`` matches them (case-sensitive
``up``/``down``; the version is all digits: a sequence or a timestamp), and the two files of a
version are paired by version, as golang-migrate pairs them, whatever their titles. golang-migrate
sends each file whole and has no "no transaction" marker: backout runs a file's statements in
one transaction, except those PostgreSQL refuses in one (``CREATE INDEX CONCURRENTLY``...), which
it runs on their own as for every format.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from backout.migrations.entry import Entry
from backout.migrations.file import MigrationFile
from backout.migrations.formats.pairs import Pair, Stray, load, parse_pair, stray, stray_file

NAME = re.compile(r"^(?P<version>[0-9]+)_(?P<title>.*)\.(?P<direction>down|up)\.(?P<ext>.*)$")
"""golang-migrate's own pattern (``source.Regex``); backout reads the ``sql`` extension."""
FORMAT = "golang-migrate"


class GolangMigrateFormat:
    name = FORMAT

    def entries(self, folder: Path) -> Iterable[Entry]:
        with os.scandir(folder) as found:
            names = sorted(i.name for i in found if i.is_file() and _is_sql(i.name))
        return list(migrations(folder, names))

    def read(self, entry: Entry) -> MigrationFile:
        if isinstance(entry, Stray):
            return stray_file(entry)
        up = load(entry.path)
        down = load(entry.others[0]) if entry.others else None
        expected = entry.path.name.removesuffix(".up.sql") + ".down.sql"
        return parse_pair(
            Pair(
                up,
                down,
                FORMAT,
                entry.name,
                entry.version,
                entry.folder,
                missing_down=f"no {expected} beside {entry.path.name}: write the SQL that "
                "undoes this migration there (golang-migrate's down file)",
            )
        )

    def detects(self, folder: Path, names: list[str]) -> bool:
        """A folder whose SQL files are mostly ``.up.sql``/``.down.sql`` files, one up at least."""
        sql = [n for n in names if _is_sql(n)]
        matched = [m for m in map(NAME.match, sql) if m and m["ext"].lower() == "sql"]
        ups = [m for m in matched if m["direction"] == "up"]
        return bool(ups) and 2 * len(matched) >= len(sql)


def migrations(folder: Path, names: Iterable[str]) -> Iterator[Entry]:
    """The migrations (and strays) of ``folder`` whose SQL files are ``names``."""
    by_version: dict[int, tuple[list[re.Match[str]], list[re.Match[str]]]] = {}
    for name in names:
        match = NAME.match(name)
        if match is None or match["ext"].lower() != "sql":
            yield stray(folder / name, folder, FORMAT, _not_a_name(name))
            continue
        ups, downs = by_version.setdefault(int(match["version"]), ([], []))
        (ups if match["direction"] == "up" else downs).append(match)
    for ups, downs in by_version.values():
        yield from _paired(folder, ups, downs)


def _paired(folder: Path, ups: list[re.Match[str]], downs: list[re.Match[str]]) -> Iterator[Entry]:
    """Each up file with its down file: the one of the same title, else the version's only one."""
    spare = list(downs)
    for up in ups:
        same = [d for d in spare if d["title"] == up["title"]]
        down = same[0] if same else (spare[0] if len(ups) == 1 and len(spare) == 1 else None)
        if down is not None:
            spare.remove(down)
        name = f"{up['version']}_{up['title']}"
        others = (folder / down.string,) if down is not None else ()
        yield Entry(folder / up.string, folder, name, up["version"], FORMAT, others)
    for down in spare:
        yield stray(folder / down.string, folder, FORMAT, _lone_down(down, bool(ups)))


def _lone_down(down: re.Match[str], has_up: bool) -> str:
    if has_up:
        return (
            f"{down.string} is a second down file for version {down['version']}: golang-migrate "
            "refuses two files for one version and direction; merge them into one"
        )
    return (
        f"{down.string} has no up file ({down['version']}_{down['title']}.up.sql): a down "
        "file without its migration; restore the up file or delete this one"
    )


def _not_a_name(name: str) -> str:
    return (
        f"{name} is not a golang-migrate file name (<version>_<title>.up.sql or "
        "<version>_<title>.down.sql, `up` and `down` in lower case): golang-migrate ignores "
        "it and backout does not run it; rename it or move it out of the migrations folder"
    )


def _is_sql(name: str) -> bool:
    return name.lower().endswith(".sql")
