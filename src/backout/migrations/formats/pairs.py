"""Migrations whose down part is a file of its own: golang-migrate's ``.down.sql``, a
directory's ``down.sql``, Flyway's undo file. Shared by those formats.

A migration is read as a :class:`Pair` of files (the down one may be missing) and parsed by
:func:`parse_pair`, which is pure: texts in, :class:`MigrationFile` out. A file of the folder
that is no migration of its format (a down file without its up, a Flyway repeatable, a name the
tool ignores) is a :class:`Stray`: listed, so that lint, ``show`` and ``apply`` see it and say
why, never run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from backout.errors import MalformedMigrationError
from backout.migrations.comments import notes_from_comments
from backout.migrations.entry import Entry
from backout.migrations.file import STUB_MARKER, MigrationFile, decode_text, parse_header
from backout.migrations.formats.markers import foreign_marker_problems
from backout.migrations.ignores import ignores_in
from backout.migrations.lint import IRREVERSIBLE
from backout.migrations.rollback_source import NO_ROLLBACK, Rollback
from backout.migrations.statements import (
    LineKind,
    Problem,
    SqlSyntaxError,
    Statement,
    blank_meta_commands,
    line_kinds,
    meta_command_problems,
    split,
)
from backout.migrations.transaction_control import Wrapper, unwrap

NOT_A_MIGRATION = "name-format"
"""The problem (and lint rule) of a file in a migrations folder that is no migration of the
folder's format: lint reports it alone, ``apply`` refuses to run the folder while it is there."""
MISSING = "rollback-missing"


@dataclass(frozen=True)
class Source:
    """One file as read: its bytes and its text (Windows line ends made Unix ones)."""

    path: Path
    data: bytes
    text: str


def decode(path: Path, data: bytes) -> Source:
    """``data`` as UTF-8 text; not UTF-8 is a one-line error naming the file and the line."""
    return Source(path, data, decode_text(path, data))


def load(path: Path) -> Source:
    """Read ``path`` once."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MalformedMigrationError(path, f"cannot be read: {exc.strerror}") from None
    return decode(path, data)


def load_text(path: Path) -> str | None:
    """The text of a small settings file beside a migration, ``None`` when there is none."""
    try:
        return load(path).text if path.is_file() else None
    except MalformedMigrationError:
        return None


@dataclass(frozen=True)
class Section:
    """One file parsed: its statements (a wrapping ``BEGIN ... COMMIT`` taken off), its comment
    lines ``(line, text after --)`` and its problems."""

    statements: tuple[Statement, ...]
    comments: tuple[tuple[int, str], ...]
    problems: tuple[Problem, ...]
    wrapper: Wrapper | None = None


def parse_section(text: str, own: str) -> Section:
    """Statements, comments and problems of a plain SQL file of the format ``own``.

    Markers are looked for on comment lines only (never inside ``$$`` bodies or strings); another
    tool's marker is a ``format-mismatch`` problem.
    """
    lines = text.split("\n")
    kinds = line_kinds(text)
    problems = [*meta_command_problems(kinds), *foreign_marker_problems(lines, kinds, own)]
    try:
        statements = split(blank_meta_commands(text, kinds))
    except SqlSyntaxError as exc:
        statements = ()
        problems.append(exc.problem)
    section = unwrap(statements)
    problems.extend(section.problems)
    comments = tuple(
        (number, line.lstrip()[2:])
        for number, (line, kind) in enumerate(zip(lines, kinds, strict=True), 1)
        if kind is LineKind.COMMENT
    )
    return Section(section.statements, comments, _by_line(problems), section.wrapper)


@dataclass(frozen=True)
class Pair:
    """What one migration is made of, as read: its up file and its down file, if any."""

    up: Source
    down: Source | None
    format: str
    name: str
    version: str | None
    folder: Path
    missing_down: str
    """What lint says when there is no down file: which file to write, where."""
    no_transaction: bool = False
    """The forward section runs outside a transaction (the format's setting says so)."""
    down_no_transaction: bool = False
    notes: tuple[str, ...] = ()
    """Notes for the operator, shown with the rollback (where a setting came from...)."""
    boilerplate: tuple[str, ...] = ()
    """Comment lines a tool writes into every down file: each is a note of its own, never
    joined to the note that follows."""
    problems: tuple[Problem, ...] = ()
    """Problems of the up file the format found (a Flyway placeholder...)."""
    down_problems: tuple[Problem, ...] = ()


def parse_pair(pair: Pair) -> MigrationFile:
    """The migration ``pair`` holds: the up file's statements forward, the down file's back."""
    forward = parse_section(pair.up.text, pair.format)
    rollback = _rollback(pair)
    header = parse_header(pair.up.text.split("\n"))
    return MigrationFile(
        path=pair.up.path,
        folder=pair.folder,
        name=pair.name,
        version=pair.version,
        header=header.fields,
        header_lines=header.lines,
        statements=forward.statements,
        rollback=rollback,
        checksum=hashlib.sha256(pair.up.data).hexdigest(),
        comments=tuple(text.strip() for _, text in forward.comments),
        problems=_by_line([*forward.problems, *pair.problems, *_missing(pair, rollback)]),
        wrapper=forward.wrapper,
        format=pair.format,
        no_transaction=pair.no_transaction,
        ignores=ignores_in(pair.up.path, pair.up.text)
        + (ignores_in(pair.down.path, pair.down.text) if pair.down else ()),
    )


def _rollback(pair: Pair) -> Rollback:
    if pair.down is None:
        return NO_ROLLBACK
    section = parse_section(pair.down.text, pair.format)
    return Rollback(
        source=pair.format,
        path=pair.down.path,
        line=1,
        statements=section.statements,
        notes=(*notes_from_comments(_apart(section.comments, pair.boilerplate)), *pair.notes),
        problems=_by_line([*section.problems, *pair.down_problems]),
        text=pair.down.text,
        wrapper=section.wrapper,
        no_transaction=pair.down_no_transaction,
    )


def _apart(
    comments: tuple[tuple[int, str], ...], boilerplate: tuple[str, ...]
) -> list[tuple[int, str]]:
    """``comments`` with a blank line after each boilerplate line (a blank ends a note)."""
    apart = []
    for number, text in comments:
        apart.append((number, text))
        if text.strip() in boilerplate:
            apart.append((number, ""))
    return apart


def _missing(pair: Pair, rollback: Rollback) -> tuple[Problem, ...]:
    """``rollback-missing`` in the format's words: no down file, or one with no statement (and
    no note saying the migration is irreversible)."""
    if pair.down is None:
        return (Problem(MISSING, 1, pair.missing_down),)
    if rollback.statements or rollback.problems:
        return ()
    if any(IRREVERSIBLE.search(note) for note in rollback.notes):
        return ()
    return (
        Problem(
            MISSING,
            1,
            f"{pair.down.path.name} holds no SQL statement: write the SQL that undoes this "
            "migration in it (plain SQL, not commented out), or a comment saying why it is "
            "irreversible",
        ),
    )


@dataclass(frozen=True)
class Stray(Entry):
    """A file (or folder) in a migrations folder that is no migration of its format, and why."""

    reason: str = field(default="")


def stray(path: Path, folder: Path, format: str, reason: str) -> Stray:
    """The stray ``path``, named by its file name without ``.sql``."""
    return Stray(path, folder, path.name.removesuffix(".sql"), None, format, reason=reason)


def stray_file(entry: Stray) -> MigrationFile:
    """A stray as the model: no statement, no rollback, one ``name-format`` problem saying why.

    Its header and comments are read, so that a fix-forward stub ``emergency`` wrote in the
    strategy's words is still known as one (and says so).
    """
    try:
        source = load(entry.path) if entry.path.is_file() else Source(entry.path, b"", "")
    except MalformedMigrationError:
        source = Source(entry.path, b"", "")
    lines = source.text.split("\n")
    header = parse_header(lines)
    comments = tuple(line.strip()[2:].strip() for line in lines if line.strip().startswith("--"))
    reason = entry.reason
    if any(c.startswith(STUB_MARKER) for c in comments):
        reason = (
            f"{entry.path.name} is a fix-forward stub: write the corrected change as this "
            f"folder's {entry.format} migration, then delete this file"
        )
    return MigrationFile(
        path=entry.path,
        folder=entry.folder,
        name=entry.name,
        version=None,
        header=header.fields,
        header_lines=header.lines,
        statements=(),
        rollback=NO_ROLLBACK,
        checksum=hashlib.sha256(source.data).hexdigest(),
        comments=comments,
        problems=(Problem(NOT_A_MIGRATION, 1, reason),),
        format=entry.format,
    )


def _by_line(problems: list[Problem]) -> tuple[Problem, ...]:
    return tuple(sorted(problems, key=lambda p: p.line))
