"""Flyway: versioned migrations ``V<version>__<description>.sql`` and their undo files
``U<version>__<description>.sql``, in the folder and its sub-folders (Flyway scans recursively).

Names are read as Flyway's ``ResourceNameParser`` reads them, with its default settings: the
prefixes ``V``, ``U``, ``R``, ``B`` are case-sensitive, the separator is the first ``__`` (a
name without one is all version: ``V2.sql``), the version is digits separated by ``.`` or ``_``.
The version is kept as Flyway shows and records it: ``_`` read as ``.`` (``V1_2__x.sql`` is
version ``1.2``), leading zeros kept. An undo file is attached to the versioned migration of the
same version; a ``.sql.conf`` beside a file with ``executeInTransaction=false`` runs that file
outside a transaction.

Repeatable migrations (``R__``), baseline migrations (``B<version>__``), callbacks
(``afterMigrate.sql``...) and names Flyway does not read are reported, never run: backout applies
versioned migrations and undoes them, nothing else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from backout.migrations.entry import Entry
from backout.migrations.file import MigrationFile
from backout.migrations.formats.pairs import (
    Pair,
    Source,
    Stray,
    load,
    load_text,
    parse_pair,
    stray,
    stray_file,
)
from backout.migrations.statements import LineKind, Problem, line_kinds
from backout.migrations.versions import version_key

FORMAT = "flyway"
_VERSION = re.compile(r"^\d+(?:[._]\d+)*$")
_VERSIONED = re.compile(r"^V\d+(?:[._]\d+)*(?:__.*)?\.sql$")
_CALLBACK = re.compile(r"^(?:before|after)[A-Z]\w*|^createSchema", re.ASCII)
_PLACEHOLDER = re.compile(r"\$\{[^}\n]*\}")
_SETTING = re.compile(r"^\s*(?P<key>[^=:#!\s]+)\s*[=:\s]\s*(?P<value>.*?)\s*$")


@dataclass(frozen=True)
class Name:
    """A file name as Flyway reads it: its kind (``V``, ``U``...), version and description."""

    file: str
    kind: str
    version: str = ""
    """As Flyway shows it: ``1_2`` is ``1.2``."""

    @property
    def key(self) -> tuple[int, ...]:
        """Flyway's comparison: numeric parts, trailing zeros ignored (``1.0`` is ``1``)."""
        key = version_key(self.version)
        while len(key) > 1 and key[-1] == 0:
            key = key[:-1]
        return key


def parse_name(file: str) -> Name | str:
    """A ``V``, ``U`` or ``B`` file's name; otherwise why the file is no migration."""
    stem = file.removesuffix(".sql")
    if not file.endswith(".sql"):
        return f"{file}: Flyway reads SQL migrations ending in `.sql` (lower case) only; rename it"
    prefix, rest = stem[:1], stem[1:]
    version, separator, _ = rest.partition("__")
    if prefix in ("V", "U", "B") and _VERSION.match(version):
        return Name(file, prefix, version.replace("_", "."))
    if prefix == "R" and separator and not version:
        return (
            f"{file} is a Flyway repeatable migration: backout does not run repeatables (Flyway "
            "runs them after the versioned ones whenever they change), so it does not apply "
            "this folder; apply with Flyway, roll back and run emergencies with backout"
        )
    if _CALLBACK.match(stem):
        return f"{file} is a Flyway callback: backout does not run callbacks; keep them for Flyway"
    return _unknown(file, prefix, version)


def _unknown(file: str, prefix: str, version: str) -> str:
    if prefix in ("v", "u", "r", "b"):
        return (
            f"{file}: Flyway's prefixes are upper case (V, U, R, B), so Flyway ignores this file "
            f"and so does backout; rename it {prefix.upper()}{file[1:]}"
        )
    if prefix in ("V", "U", "B", "R"):
        return (
            f"{file} is not a valid Flyway name: the version `{version}` must be digits "
            "separated by `.` or `_`, then `__` and the description (V1_2__add_jobs.sql)"
        )
    return (
        f"{file} is not a Flyway migration name (V<version>__<description>.sql, or U for its "
        "undo): Flyway ignores it and backout does not run it; rename it or move it out"
    )


class FlywayFormat:
    name = FORMAT

    def entries(self, folder: Path) -> Iterable[Entry]:
        return list(migrations(folder, _sql_files(folder)))

    def read(self, entry: Entry) -> MigrationFile:
        if isinstance(entry, Stray):
            return stray_file(entry)
        up = load(entry.path)
        down = load(entry.others[0]) if entry.others else None
        settings = _settings(load_text(entry.path.with_name(entry.path.name + ".conf")))
        down_settings = _settings(
            load_text(down.path.with_name(down.path.name + ".conf")) if down else None
        )
        return parse_pair(
            Pair(
                up,
                down,
                FORMAT,
                entry.name,
                entry.version,
                entry.folder,
                missing_down=f"no undo file for version {entry.version} (U{entry.version}__"
                "<description>.sql in this folder): write the SQL that undoes this migration there",
                no_transaction=_no_transaction(settings),
                down_no_transaction=_no_transaction(down_settings),
                notes=_notes(down_settings),
                problems=_placeholders(up, settings),
                down_problems=_placeholders(down, down_settings) if down else (),
            )
        )

    def detects(self, folder: Path, names: list[str]) -> bool:
        """A folder (or one of its sub-folders) with ``V<version>__<description>.sql`` files."""
        if any(_VERSIONED.match(n) for n in names):
            return True
        return any(_VERSIONED.match(p.name) for p in folder.rglob("V*.sql"))


def migrations(folder: Path, files: Iterable[Path]) -> Iterator[Entry]:
    """The versioned migrations of ``files``, each with its undo file; every other file a stray."""
    versioned: dict[tuple[int, ...], list[tuple[Path, Name]]] = {}
    undo: dict[tuple[int, ...], list[tuple[Path, Name]]] = {}
    for path in files:
        name = parse_name(path.name)
        if isinstance(name, str):
            yield stray(path, folder, FORMAT, name)
        elif name.kind == "B":
            yield stray(path, folder, FORMAT, _baseline(name))
        else:
            (versioned if name.kind == "V" else undo).setdefault(name.key, []).append((path, name))
    for key, group in versioned.items():
        yield from _versioned(folder, group, undo.pop(key, []))
    for group in undo.values():
        for path, name in group:
            yield stray(path, folder, FORMAT, _lone_undo(name))


def _versioned(
    folder: Path, group: list[tuple[Path, Name]], undos: list[tuple[Path, Name]]
) -> Iterator[Entry]:
    """One version's files: each spelling of it a migration (two of one spelling are refused as
    duplicates), a second spelling Flyway takes for the same version a stray; the first undo
    file is the down part, any other a stray."""
    group = sorted(group, key=lambda item: (version_key(item[1].version), item[0].name))
    first = group[0][1]
    for path, name in group:
        if version_key(name.version) != version_key(first.version):
            yield stray(path, folder, FORMAT, _same_version(name, group[0][0]))
            continue
        others = (undos[0][0],) if undos else ()
        yield Entry(path, folder, path.name.removesuffix(".sql"), name.version, FORMAT, others)
    for path, name in undos[1:]:
        yield stray(path, folder, FORMAT, _second_undo(name, undos[0][0]))


def _sql_files(folder: Path) -> list[Path]:
    """The ``.sql`` files (any case) of ``folder`` and its sub-folders, hidden ones skipped."""
    found = []
    for top, directories, files in os.walk(folder):
        directories[:] = sorted(d for d in directories if not d.startswith("."))
        found += [Path(top, f) for f in sorted(files) if f.lower().endswith(".sql")]
    return found


def _settings(text: str | None) -> dict[str, str]:
    """A script configuration file (``V1__x.sql.conf``): ``key=value`` lines, ``#`` comments."""
    settings: dict[str, str] = {}
    for line in (text or "").split("\n"):
        match = _SETTING.match(line)
        if match and not line.lstrip().startswith(("#", "!")):
            settings[match["key"]] = match["value"]
    return settings


def _no_transaction(settings: dict[str, str]) -> bool:
    return settings.get("executeInTransaction", "").lower() == "false"


def _notes(settings: dict[str, str]) -> tuple[str, ...]:
    if not _no_transaction(settings):
        return ()
    return (
        "its .sql.conf says executeInTransaction=false: it runs outside a transaction, "
        "statement by statement; a failure leaves the statements before it done",
    )


def _placeholders(source: Source, settings: dict[str, str]) -> tuple[Problem, ...]:
    """Flyway replaces ``${name}`` before running a file (unless its configuration says not
    to); backout does not, so such a file is refused rather than run with the wrong text."""
    if settings.get("placeholderReplacement", "").lower() == "false":
        return ()
    lines = source.text.split("\n")
    return tuple(
        Problem(
            "sql-syntax",
            number,
            f"`{match.group()}` is a Flyway placeholder: Flyway replaces it before running the "
            "file, backout does not; write its value instead",
        )
        for number, (line, kind) in enumerate(zip(lines, line_kinds(source.text), strict=True), 1)
        if kind is not LineKind.COMMENT
        for match in _PLACEHOLDER.finditer(line)
    )


def _baseline(name: Name) -> str:
    return (
        f"{name.file} is a Flyway baseline migration (version {name.version}): backout does not "
        "run baseline migrations (a new database gets the versioned ones up to it), so it does "
        "not apply this folder; apply with Flyway, roll back and run emergencies with backout"
    )


def _lone_undo(name: Name) -> str:
    return (
        f"{name.file} undoes version {name.version}, but there is no V{name.version}__*.sql: an "
        "undo file without its migration; restore the migration or delete this file"
    )


def _second_undo(name: Name, first: Path) -> str:
    return (
        f"{name.file} is a second undo file for version {name.version} ({first.name} is the "
        "first): Flyway refuses two; merge them into one"
    )


def _same_version(name: Name, first: Path) -> str:
    return (
        f"{name.file} has the same Flyway version as {first.name} (Flyway ignores trailing "
        "zeros: 1.0 is 1) and Flyway refuses two migrations of one version; renumber one"
    )
