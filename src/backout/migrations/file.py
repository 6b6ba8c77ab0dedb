"""One migration file: its name, header, forward statements, documented rollback and checksums.

:func:`parse_migration` is pure (bytes in, :class:`MigrationFile` out); :func:`read_migration`
reads the file and the sibling files the rollback sources ask for, then calls it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from backout.errors import MalformedMigrationError
from backout.migrations.formats.markers import foreign_marker_problems
from backout.migrations.ignores import MARKER as IGNORE_MARKER
from backout.migrations.ignores import Ignore, ignores_in
from backout.migrations.rollback_source import (
    COMMENT_BLOCK,
    SOURCES,
    Found,
    MigrationText,
    Rollback,
    RollbackSource,
    find_rollback,
    is_rollback_file_name,
    rollback_file_names,
    sibling_names,
    stray_remarks,
)
from backout.migrations.statements import (
    LineKind,
    Problem,
    SqlSyntaxError,
    Statement,
    blank_meta_commands,
    meta_command_problems,
    split,
)
from backout.migrations.transaction_control import Wrapper, unwrap
from backout.migrations.versions import version_key

NAME_PATTERN = re.compile(r"^(?P<version>\d{3,})_(?P<description>[a-z0-9]+(?:_[a-z0-9]+)*)\.sql$")
_LOOSE_VERSION = re.compile(r"^(?P<version>\d+)")
_HEADER_FIELD = re.compile(r"^--\s*(?P<key>[A-Za-z][A-Za-z0-9 _/-]{0,39}?)\s*:\s*(?P<value>.*)$")
STUB_MARKER = "BACKOUT-STUB:"
"""A comment starting with this marks a fix-forward stub that is not written yet."""
REQUIRED_HEADER = ("Migration", "Purpose", "Phase", "Checklist")
ROLLBACK_SUFFIXES = (".rollback.sql", ".down.sql")
"""The suffixes of rollback files named after their migration (see also
:func:`backout.migrations.rollback_source.is_rollback_file_name`)."""
ORPHAN_ROLLBACK = "orphan-rollback"


@dataclass(frozen=True)
class MigrationFile:
    """Everything backout knows about one migration file, read without a database."""

    path: Path
    folder: Path
    name: str
    """The file name without ``.sql``: ``004_alter_events_add_impact_score``."""
    version: str | None
    """The leading digits as written (``004``); ``None`` when the name has none."""
    header: Mapping[str, str]
    header_lines: Mapping[str, int]
    """The line of each header field."""
    statements: tuple[Statement, ...]
    rollback: Rollback
    checksum: str
    """SHA-256 of the file's bytes."""
    comments: tuple[str, ...] = ()
    """The forward section's comment lines (documentation, data-preservation notes)."""
    problems: tuple[Problem, ...] = field(default=())
    """What backout cannot accept in the forward section (syntax, psql meta-commands, ...)."""
    wrapper: Wrapper | None = None
    """The ``BEGIN; ... COMMIT;`` around the whole forward section, taken off ``statements``."""
    format: str = "strategy"
    """The format it was read in (see :mod:`backout.migrations.formats`)."""
    no_transaction: bool = False
    """The format says the forward section runs outside a transaction (goose's
    ``NO TRANSACTION``, dbmate's ``transaction:false``...): statement by statement, journaled."""
    ignores: tuple[Ignore, ...] = ()
    """The ``-- backout:ignore <rule>`` comments in the file and its rollback file."""

    @property
    def number(self) -> int | None:
        """The version as one number (``004``: 4); ``None`` for none or several (``1.2``,
        ``003.02``)."""
        key = version_key(self.version)
        return key[0] if len(key) == 1 else None

    @property
    def all_problems(self) -> tuple[Problem, ...]:
        """The forward section's problems and the rollback's, in line order."""
        return tuple(sorted((*self.problems, *self.rollback.problems), key=lambda p: p.line))

    @property
    def is_stub(self) -> bool:
        """Whether the file still holds a ``-- BACKOUT-STUB:`` placeholder (unfinished)."""
        return any(c.startswith(STUB_MARKER) for c in self.comments)

    def header_value(self, key: str) -> str | None:
        """A header field by name, ignoring case."""
        for name, value in self.header.items():
            if name.lower() == key.lower():
                return value
        return None

    def header_line(self, key: str) -> int:
        """The line of a header field by name, ignoring case (1 when it is missing)."""
        for name, line in self.header_lines.items():
            if name.lower() == key.lower():
                return line
        return 1


def is_migration_name(name: str) -> bool:
    """Whether a file name in a migrations folder is a migration, not a rollback script
    (``*.rollback.sql``, ``*.down.sql``, ``*_rollback.sql``, ``rollback_*.sql``...) or another
    file."""
    return name.endswith(".sql") and not is_rollback_file_name(name)


def parse_migration(
    path: Path,
    data: bytes,
    *,
    folder: Path | None = None,
    siblings: Mapping[str, str] | None = None,
    sources: tuple[RollbackSource, ...] = SOURCES,
) -> MigrationFile:
    """Parse a migration file's bytes. Pure: ``siblings`` holds the text of the files beside it."""
    source = MigrationText(path, decode_text(path, data), siblings or {})
    found = find_rollback(source, sources)
    forward = _forward_section(source, found)
    stem = path.name.removesuffix(".sql")
    version = _LOOSE_VERSION.match(stem)
    header = parse_header(source.lines)
    foreign = foreign_marker_problems(source.lines, source.kinds, "strategy")
    rollback = _with_stray_remarks(source, found.rollback)
    unused = _unused_rollback_files(source, rollback)
    return MigrationFile(
        path=path,
        folder=folder or path.parent,
        name=stem,
        version=version.group("version") if version else None,
        header=header.fields,
        header_lines=header.lines,
        statements=forward.statements,
        rollback=rollback,
        checksum=hashlib.sha256(data).hexdigest(),
        comments=forward.comments,
        problems=tuple(sorted((*forward.problems, *foreign, *unused), key=lambda p: p.line)),
        wrapper=forward.wrapper,
        ignores=_ignores(source, rollback),
    )


def _ignores(source: MigrationText, rollback: Rollback) -> tuple[Ignore, ...]:
    """The directives in the file, and in the sibling file that holds its rollback."""
    found = ignores_in(source.path, source.text)
    if rollback.path is not None and rollback.path != source.path:
        found += ignores_in(rollback.path, source.siblings.get(rollback.path.name, ""))
    return found


def _with_stray_remarks(source: MigrationText, rollback: Rollback) -> Rollback:
    """``rollback``, with a problem for each remark elsewhere in the file that documents SQL it
    does not hold."""
    if not source.remarks:
        return rollback
    stray = stray_remarks(source, rollback)
    if not stray:
        return rollback
    problems = tuple(sorted((*rollback.problems, *stray), key=lambda p: p.line))
    return replace(rollback, problems=problems)


def _unused_rollback_files(source: MigrationText, rollback: Rollback) -> tuple[Problem, ...]:
    """A problem for each rollback file named after the migration that is not its rollback
    (the file has a ROLLBACK section, or another rollback file comes first)."""
    used = rollback.path.name if rollback.path is not None else None
    if rollback.path not in (None, source.path):
        where = str(used)
    elif rollback.source == COMMENT_BLOCK:
        where = f"the ROLLBACK section at line {rollback.line}"
    else:
        where = f"the rollback remark at line {rollback.line}"
    return tuple(
        Problem(
            ORPHAN_ROLLBACK,
            rollback.line or 1,
            f"{name} is a rollback file for this migration, but backout runs {where}: "
            "keep one rollback (delete the file, or the section) so nobody runs the wrong one",
        )
        for name in rollback_file_names(source.path.name)
        if name in source.siblings and name != used and name != source.path.name
    )


def decode_text(path: Path, data: bytes) -> str:
    """The file's text, with Windows line ends made Unix ones."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MalformedMigrationError(
            path, "is not UTF-8 text; save it as UTF-8", line=line
        ) from None
    return text.replace("\r\n", "\n")


@dataclass(frozen=True)
class _Forward:
    """The forward section: the lines before the rollback (all of them when it is elsewhere)."""

    statements: tuple[Statement, ...]
    comments: tuple[str, ...]
    problems: list[Problem]
    """Meta-command problems, those finding the rollback revealed, then a syntax error or
    transaction control; in that order, which sorting by line keeps for problems on the same
    line."""
    wrapper: Wrapper | None = None


def _forward_section(source: MigrationText, found: Found) -> _Forward:
    lines = source.lines
    end = found.forward_end_line - 1 if found.forward_end_line else len(lines)
    forward_lines, kinds = lines[:end], source.kinds[:end]
    problems = [*meta_command_problems(kinds), *found.problems]
    if source.statements is not None:  # the whole file parsed: its forward part is what precedes
        statements = tuple(s for s in source.statements if s.line <= end)
    else:
        try:
            statements = split(blank_meta_commands("\n".join(forward_lines), kinds))
        except SqlSyntaxError as exc:
            statements = ()
            problems.append(exc.problem)
    comments = tuple(
        line.lstrip()[2:].strip()
        for line, kind in zip(forward_lines, kinds, strict=True)
        if kind is LineKind.COMMENT
    )
    section = unwrap(statements)
    problems.extend(section.problems)
    return _Forward(section.statements, comments, problems, section.wrapper)


def read_migration(
    path: Path,
    *,
    folder: Path | None = None,
    sources: tuple[RollbackSource, ...] = SOURCES,
    others: Sequence[Path] | None = None,
) -> MigrationFile:
    """Read and parse one migration file and the sibling files its rollback may live in
    (``others`` when the caller has listed them, else those of the names the sources ask for
    that exist)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MalformedMigrationError(path, f"cannot be read: {exc.strerror}") from None
    if others is None:
        candidates = (path.with_name(name) for name in sibling_names(path, sources))
        others = [p for p in candidates if p != path and p.is_file()]
    siblings: dict[str, str] = {}
    for sibling in others:
        try:
            siblings[sibling.name] = sibling.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
        except (OSError, UnicodeDecodeError):
            raise MalformedMigrationError(sibling, "cannot be read as UTF-8 text") from None
    return parse_migration(path, data, folder=folder, siblings=siblings, sources=sources)


@dataclass(frozen=True)
class Header:
    """The ``-- Key: value`` fields that open a migration file, and the line of each."""

    fields: Mapping[str, str]
    lines: Mapping[str, int]


def parse_header(lines: list[str]) -> Header:
    """The ``-- Key: value`` lines of the comment block that opens the file.

    The block ends at the first blank line after a field, or at the first line of code. An
    indented comment line continues the previous field's value.
    """
    header: dict[str, str] = {}
    numbers: dict[str, int] = {}
    last: str | None = None
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped:
            if header:
                break
            continue
        if not stripped.startswith("--"):
            break
        if stripped[2:].lstrip().startswith(IGNORE_MARKER):  # a directive, not a field
            last = None
            continue
        match = _HEADER_FIELD.match(stripped)
        if match and match.group("value").strip() and not _looks_like_sql(match.group("key")):
            last = match.group("key").strip()
            header[last] = match.group("value").strip()
            numbers[last] = number
        elif last and stripped[2:].startswith(("   ", "\t")) and stripped[2:].strip():
            header[last] = f"{header[last]} {stripped[2:].strip()}"
        else:
            last = None
    return Header(header, numbers)


def _looks_like_sql(key: str) -> bool:
    return key.strip().upper().startswith(("SELECT ", "UPDATE ", "INSERT ", "DELETE "))
