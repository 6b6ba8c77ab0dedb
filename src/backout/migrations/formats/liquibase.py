"""Liquibase formatted SQL: ``--liquibase formatted sql`` files of ``--changeset`` sections.

One changeset is one migration, as Liquibase tracks and rolls back changesets one by one::

    --liquibase formatted sql

    --changeset alice:create-users
    --comment: the users table
    CREATE TABLE users (id bigint PRIMARY KEY);
    --rollback DROP TABLE users;

    --changeset bob:users-email-index runInTransaction:false
    CREATE INDEX CONCURRENTLY users_email ON users (email);
    --rollback DROP INDEX CONCURRENTLY users_email;

- **Names.** ``<file stem>::<id>::<author>`` (``003-users::create-users::alice``); a person may
  also name a changeset by its id (``create-users``), by ``author:id`` (``alice:create-users``) or
  as Liquibase prints it (``003-users.sql::create-users::alice``).
- **Versions** (the history table's key) sort in file order and never change when changesets
  are appended: ``<file number>.<position>``, the digits the file name starts with and the
  changeset's 1-based position in its file, two digits at least (``003.01``, ``003.02``,
  ``20240115093000.01``, ``2024-01-15.03``). The files whose names start with no number are
  numbered ``0.<n>`` by name, before the numbered ones: ``changelog.sql`` holds ``0.1.01``,
  ``0.1.02``... Insert changesets and files after the applied ones (as Liquibase expects): one
  inserted before shifts the versions after it, and ``status`` then shows those as modified, which
  ``apply`` refuses.
- **Sections.** The forward SQL is the changeset's SQL, the rollback its ``--rollback <sql>`` lines
  (one or several; a statement may span several) or its ``/* liquibase rollback ... */`` block;
  ``--rollback changesetId:<id> changesetAuthor:<author>`` rolls back with an earlier changeset's
  SQL of the same file. ``--rollback not required`` and ``--rollback empty`` document that there is
  nothing to undo (irreversible as documented: ``lint`` accepts it, ``verify`` says so, ``rollback``
  refuses); a changeset without any rollback line documents none (``rollback-missing``).
- **Attributes.** ``runInTransaction:false`` runs both sections statement by statement outside a
  transaction; ``endDelimiter`` (and ``rollbackEndDelimiter``) lines such as ``GO`` or ``/``
  separate statements (by default ``GO`` and ``/`` lines do, as in Liquibase); statements are
  always split by PostgreSQL's parser, so ``splitStatements:false`` sends the same statements.
  ``dbms:`` changesets for other databases only and ``ignore:true`` ones are not migrations here.
  ``context``, ``labels``, ``runOnChange``, ``runAlways``, ``failOnError``, ``--comment``,
  ``--validCheckSum``, ``--preconditions`` and ``--precondition-*`` are shown in the header and
  not acted on (backout evaluates no precondition). ``--ignoreLines`` lines are skipped.
- **Refused, with the line**: a ``${parameter}`` (backout substitutes none), a malformed
  ``--changeset`` or ``--rollback`` line (``--rollback:``), SQL before the first changeset
  (Liquibase never runs it), a marker line inside a ``$$`` body or a string (Liquibase, which reads
  line by line, would cut the body there), and a ``.sql`` file of the folder that is not
  Liquibase formatted SQL.

Reading is pure (text in, model out); a file is read once, when its folder is listed, and parsed
once for all its changesets.
"""

from __future__ import annotations

import hashlib
import os
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from backout.errors import MalformedMigrationError
from backout.migrations.entry import Entry
from backout.migrations.file import MigrationFile, decode_text, parse_header
from backout.migrations.formats import file_bytes
from backout.migrations.formats.markers import FORMAT_MISMATCH, foreign_marker_problems
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

FORMAT = "liquibase"
SYNTAX = "sql-syntax"
UNPARSEABLE = "rollback-unparseable"

# Liquibase's own patterns (its formatted SQL parser), all case-insensitive.
FIRST_LINE = re.compile(r"^\s*--\s*liquibase\s*formatted.*$", re.I)
_CHANGESET = re.compile(r'^\s*--\s*changeset\s+("[^"]+"|[^:]+):("[^"]+"|\S+)(.*)$', re.I)
_CHANGESET_LIKE = re.compile(r"^\s*--\s*changeset|^-\s*changeset\s", re.I)
_ROLLBACK = re.compile(r"^\s*--\s*rollback (.*)$", re.I)
# What was meant as a rollback line but that Liquibase ignores: `--rollback:`, a tab, nothing.
_ROLLBACK_LIKE = re.compile(r"^\s*--\s*rollback(?:\s*:|\t|\s*$)", re.I)
_BLOCK_START = re.compile(r"^\s*/\*\s*liquibase\s*rollback\s*$", re.I)
_BLOCK_END = re.compile(r"\*/\s*$")
_COMMENT = re.compile(r"^--\s*comment:? (.*)$", re.I)
_VALID_CHECKSUM = re.compile(r"^--\s*validCheckSum:? (.*)$", re.I)
_PRECONDITIONS = re.compile(r"^\s*--\s*(preconditions)\b\s*(.*)$", re.I)
_PRECONDITION = re.compile(r"^\s*--\s*(precondition-[a-z0-9-]+)\s*(.*)$", re.I)
_PROPERTY = re.compile(r"^\s*--\s*property\s", re.I)
_IGNORE_LINES = re.compile(r"^--\s*ignoreLines:(\w+)\s*$", re.I)
_ATTRIBUTE = re.compile(r'(\w+):("[^"]*"|\S*)')
_REFERENCE = re.compile(r"\bchangeset(id|author|path):(\S+)", re.I)
_PARAMETER = re.compile(r"\$\{[^}\n]*\}")
_FILE_NUMBER = re.compile(r"^\d+(?:[._-]\d+)*")
_EMPTY_ROLLBACK = re.compile(r"^(not required|empty)", re.I)
# Tokens that carry text across lines, where a line is not what it starts with.
_LITERALS = frozenset({"SCONST", "USCONST", "XCONST", "BCONST", "IDENT", "UIDENT"})


@dataclass(frozen=True)
class ChangesetEntry(Entry):
    """One changeset of a Liquibase file (or, with ``index`` 0, a whole file read as one)."""

    index: int = 0
    """The changeset's 1-based position among its file's changesets; 0: the whole file."""
    changeset: str = ""
    """The changeset's id (``create-users``), as Liquibase records it."""
    author: str = ""
    data: bytes = field(default=b"", repr=False, compare=False)
    """The file's bytes, read once when the folder was listed."""

    @property
    def description(self) -> str:
        return self.changeset or super().description

    @property
    def aliases(self) -> tuple[str, ...]:
        if not self.changeset:
            return ()
        return (self.changeset, f"{self.author}:{self.changeset}", self.liquibase_name)

    @property
    def liquibase_name(self) -> str:
        """How Liquibase names it: ``003-users.sql::create-users::alice``."""
        return f"{self.path.name}::{self.changeset}::{self.author}"


class LiquibaseFormat:
    name = FORMAT

    def entries(self, folder: Path) -> Iterable[ChangesetEntry]:
        with os.scandir(folder) as found:
            names = sorted(i.name for i in found if i.name.endswith(".sql") and i.is_file())
        unnumbered = 0
        for file_name in names:
            path = folder / file_name
            listed = list(_file_entries(path, folder))
            if listed and _FILE_NUMBER.match(path.stem) is None:
                unnumbered += 1
            yield from (_numbered(e, unnumbered) for e in listed)

    def read(self, entry: Entry) -> MigrationFile:
        if not isinstance(entry, ChangesetEntry):
            entry = _entry_of(entry)
        layout = _layout(entry.path, entry.data or _read(entry.path))
        if entry.index == 0 or not layout.heads:
            return read_whole(layout, entry.folder, entry.name, entry.version)
        return read_changeset(layout, entry.index - 1, entry.folder, entry.name, entry.version)

    def detects(self, folder: Path, names: list[str]) -> bool:
        return any(name.endswith(".sql") and is_formatted(folder / name) for name in names)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MalformedMigrationError(path, f"cannot be read: {exc.strerror}") from None


def is_formatted(path: Path) -> bool:
    """Whether the file's first non-blank line is ``--liquibase formatted sql``."""
    data = file_bytes(path)
    if data is None:
        return False
    text = data[:4096].decode("utf-8-sig", errors="replace")
    first = next((line for line in text.splitlines() if line.strip()), "")
    return FIRST_LINE.match(first) is not None


def parse_changelog(path: Path, data: bytes, *, folder: Path | None = None) -> list[MigrationFile]:
    """Every migration of one Liquibase file, read from its bytes (pure); versions as if the file
    were the first of its folder without a number, when it has none."""
    entries = [_numbered(e, 1) for e in _entries_of(path, folder or path.parent, data)]
    return [LiquibaseFormat().read(e) for e in entries]


# ---------------------------------------------------------------------------------------------
# Listing: the changesets of a file, with their names and versions


def _file_entries(path: Path, folder: Path) -> Iterator[ChangesetEntry]:
    try:
        data = path.read_bytes()
    except OSError:
        yield ChangesetEntry(path, folder, path.stem, "01", FORMAT)  # read() says why
        return
    yield from _entries_of(path, folder, data)


def _entries_of(path: Path, folder: Path, data: bytes) -> Iterator[ChangesetEntry]:
    """The file's migrations, their versions still without the number of an unnumbered file."""
    whole = ChangesetEntry(path, folder, path.stem, "01", FORMAT, data=data)
    try:
        layout = _layout(path, data)
    except MalformedMigrationError:
        yield whole  # read() reports it
        return
    if not layout.heads:
        if layout.has_content:
            yield whole
        return
    for position, head in enumerate(layout.heads, 1):
        if head.runs_on_postgresql:
            named = head.problem is None
            yield ChangesetEntry(
                path,
                folder,
                f"{path.stem}::{head.id}::{head.author}" if named else f"{path.stem}::{head.id}",
                f"{position:02d}",
                FORMAT,
                index=position,
                changeset=head.id if named else "",
                author=head.author,
                data=data,
            )


def _numbered(entry: ChangesetEntry, unnumbered: int) -> ChangesetEntry:
    """``entry`` with its full version: the file's number (or ``0.<n>``), then its position."""
    match = _FILE_NUMBER.match(entry.path.stem)
    number = match.group() if match else f"0.{unnumbered}"
    return replace(entry, version=f"{number}.{entry.version}")


def _entry_of(entry: Entry) -> ChangesetEntry:
    """A plain entry naming a Liquibase file: the changeset it names, read from the file."""
    for found in LiquibaseFormat().entries(entry.folder):
        if found.path == entry.path and entry.name in (found.name, found.path.stem):
            return found
    raise MalformedMigrationError(entry.path, "holds no Liquibase changeset")


# ---------------------------------------------------------------------------------------------
# Layout: where each changeset starts, and what every line is


@dataclass(frozen=True)
class Head:
    """A ``--changeset author:id attribute:value...`` line."""

    line: int
    author: str
    id: str
    attributes: Mapping[str, str]
    """Attribute names as written -> values (quotes taken off)."""
    written: str
    problem: Problem | None = None
    """A line that starts a changeset but is not ``--changeset <author>:<id>``."""

    def attribute(self, name: str) -> str | None:
        for key, value in self.attributes.items():
            if key.lower() == name.lower():
                return value
        return None

    def flag(self, name: str, default: bool) -> bool:
        """A boolean attribute as Liquibase reads it (``true`` in any case; else false)."""
        value = self.attribute(name)
        return default if value is None else value.lower() == "true"

    @property
    def runs_on_postgresql(self) -> bool:
        """Whether Liquibase would run it on PostgreSQL (``dbms``, ``ignore``)."""
        return not self.flag("ignore", False) and _for_postgresql(self.attribute("dbms"))


@dataclass(frozen=True)
class Layout:
    """A Liquibase file, line by line: its changesets and the file's own problems."""

    path: Path
    text: str
    formatted: bool
    lines: tuple[str, ...]
    kinds: tuple[LineKind, ...]
    """Each line's kind (:func:`backout.migrations.statements.line_kinds`)."""
    literal: frozenset[int]
    """Lines (0-based) inside a string or ``$$`` body (:func:`literal_lines`)."""
    heads: tuple[Head, ...] = ()
    ignored: frozenset[int] = frozenset()
    """Lines (1-based) that ``--ignoreLines`` hides from Liquibase."""
    problems: tuple[Problem, ...] = ()
    """Problems outside any changeset's own reading, each given to the changeset it is in."""

    @property
    def has_content(self) -> bool:
        """Whether a file without changesets is a migration: any line, or, in a formatted file
        (where Liquibase ignores comments outside changesets), any SQL."""
        if self.formatted:
            return any(kind in (LineKind.CODE, LineKind.META) for kind in self.kinds)
        return any(line.strip() for line in self.lines)

    def region(self, index: int) -> tuple[int, int]:
        """The first and last line (1-based) of changeset ``index``'s body."""
        start = self.heads[index].line + 1
        after = self.heads[index + 1].line if index + 1 < len(self.heads) else len(self.lines) + 1
        return start, after - 1

    def owner(self, line: int) -> int:
        """The changeset (index) a line belongs to; lines before the first belong to it."""
        return max(0, bisect_right([h.line for h in self.heads], line) - 1)


@lru_cache(maxsize=64)
def _layout(path: Path, data: bytes) -> Layout:
    return layout_of(path, decode_text(path, data))


def layout_of(path: Path, text: str) -> Layout:
    """Where each changeset of ``text`` starts, and the file's problems. Pure."""
    lines = tuple(text.split("\n"))
    first = next((line for line in lines if line.strip()), "")
    kinds, literal = line_kinds(text), literal_lines(text)
    if FIRST_LINE.match(first) is None:
        return Layout(path, text, False, lines, kinds, literal)
    ignored = ignored_lines(lines)
    heads: list[Head] = []
    problems: list[Problem] = []
    for number, line in enumerate(lines, 1):
        if number in ignored or not _CHANGESET_LIKE.match(line):
            continue
        if number - 1 in literal:
            problems.append(_inside_literal(number, "--changeset", SYNTAX))
        else:
            heads.append(parse_head(number, line))
    if heads:
        problems += _preamble_problems(lines, kinds, ignored, heads[0].line)
    problems += foreign_marker_problems(lines, kinds, FORMAT)
    return Layout(path, text, True, lines, kinds, literal, tuple(heads), ignored, tuple(problems))


def parse_head(number: int, line: str) -> Head:
    """A ``--changeset`` line: author, id, attributes; or a problem when it is malformed."""
    written = line.strip()
    match = _CHANGESET.match(line)
    if match is None or not match.group(2).strip('"').replace(":", ""):
        return Head(number, "", f"line-{number}", {}, written, _malformed_changeset(number))
    author, changeset = (match.group(i).strip('"') for i in (1, 2))
    attributes = {key: value.strip('"') for key, value in _ATTRIBUTE.findall(match.group(3))}
    return Head(number, author.strip(), changeset, attributes, written)


def ignored_lines(lines: Sequence[str]) -> frozenset[int]:
    """The lines (1-based) ``--ignoreLines:start`` ... ``:end`` or ``--ignoreLines:<n>`` hide,
    the directives included."""
    ignored: set[int] = set()
    skip, until_end = 0, False
    for number, line in enumerate(lines, 1):
        directive = _IGNORE_LINES.match(line)
        if until_end or skip:
            ignored.add(number)
            skip = max(0, skip - 1)
            until_end = until_end and not (directive and directive.group(1).lower() == "end")
            continue
        if directive:
            ignored.add(number)
            value = directive.group(1).lower()
            until_end = value == "start"
            skip = int(value) if value.isdigit() else 0
    return frozenset(ignored)


def literal_lines(text: str) -> frozenset[int]:
    """The lines (0-based) inside a string, a ``$$`` body or a quoted name that spans lines: what
    they start with is text, not a comment or a marker."""
    from pglast.parser import ParseError, scan

    try:
        tokens = scan(text)
    except ParseError:
        return frozenset()
    starts = [0]
    for line in text.split("\n")[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    inside: set[int] = set()
    for token in tokens:
        if token.name in _LITERALS:
            first = bisect_right(starts, token.start) - 1
            last = bisect_right(starts, token.end) - 1
            inside.update(range(first + 1, last + 1))
    return frozenset(inside)


def _preamble_problems(
    lines: Sequence[str], kinds: Sequence[LineKind], ignored: frozenset[int], end: int
) -> list[Problem]:
    """SQL before the first changeset (line ``end``), which Liquibase never runs: one problem, at
    its first line."""
    for number in range(1, end):
        if kinds[number - 1] is LineKind.CODE and number not in ignored:
            return [
                Problem(
                    SYNTAX,
                    number,
                    "SQL before the file's first `--changeset` line: Liquibase never runs it; "
                    "put it in a changeset (`--changeset <author>:<id>` above it) or delete it",
                )
            ]
    return []


def _for_postgresql(dbms: str | None) -> bool:
    """Liquibase's ``dbms`` test for PostgreSQL: ``postgresql``, ``all``, ``!oracle``..."""
    names = [name.strip().lower() for name in (dbms or "").split(",") if name.strip()]
    if not names or "all" in names:
        return True
    if "none" in names or "!postgresql" in names:
        return False
    wanted = [name for name in names if not name.startswith("!")]
    return not wanted or "postgresql" in wanted


# ---------------------------------------------------------------------------------------------
# One changeset


@dataclass
class _Body:
    """A changeset's lines sorted out: SQL, rollback lines, header fields, problems."""

    forward: dict[int, str] = field(default_factory=dict)
    """Line -> text of the lines that are the changeset's SQL (comments included)."""
    rollback: dict[int, str] = field(default_factory=dict)
    """Line -> the rollback SQL it holds (``--rollback <sql>``, or a line of a block)."""
    written: dict[int, str] = field(default_factory=dict)
    """Line -> the rollback lines exactly as written (their checksum is the rollback's)."""
    header: dict[str, str] = field(default_factory=dict)
    header_lines: dict[str, int] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)
    rollback_problems: list[Problem] = field(default_factory=list)
    last: int = 0
    """The last line that is SQL or a directive (trailing comments belong to no one)."""

    def add(self, key: str, value: str, line: int) -> None:
        if key in self.header:
            self.header[key] = f"{self.header[key]}; {value}"
        else:
            self.header[key], self.header_lines[key] = value, line


def read_changeset(
    layout: Layout, index: int, folder: Path, name: str, version: str | None
) -> MigrationFile:
    """Changeset ``index`` of ``layout`` as a migration. Pure."""
    head = layout.heads[index]
    body = sort_lines(layout, index)
    forward = forward_section(layout, index, body)
    rollback = rollback_section(layout, index, body)
    mine = [p for p in layout.problems if layout.owner(p.line) == index]
    problems = [*([head.problem] if head.problem else []), *forward.problems, *mine]
    first, last = head.line, max(body.last, head.line)
    return MigrationFile(
        path=layout.path,
        folder=folder,
        name=name,
        version=version,
        header=body.header,
        header_lines=body.header_lines,
        statements=forward.statements,
        rollback=rollback,
        checksum=_sha256("\n".join(layout.lines[first - 1 : last])),
        comments=tuple(body.comments),
        problems=_by_line(problems),
        wrapper=forward.wrapper,
        format=FORMAT,
        no_transaction=not head.flag("runInTransaction", True),
    )


def sort_lines(layout: Layout, index: int) -> _Body:
    """Sort changeset ``index``'s lines into SQL, rollback, header fields and problems."""
    head = layout.heads[index]
    body = _Body()
    _head_fields(head, body)
    start, end = layout.region(index)
    block: int | None = None  # the line of an open `/* liquibase rollback` block
    for number in range(start, end + 1):
        line = layout.lines[number - 1]
        if number in layout.ignored:
            body.last = number
        elif block is not None:
            block = _block_line(body, number, line, block)
        elif number - 1 in layout.literal:
            _literal_line(body, number, line)
        elif layout.kinds[number - 1] in (LineKind.COMMENT, LineKind.BLOCK_COMMENT):
            block = _comment_line(body, number, line)
        else:
            body.forward[number] = line
            body.last = number if line.strip() else body.last
    if block is not None:
        body.rollback_problems.append(
            Problem(
                UNPARSEABLE,
                block,
                "this `/* liquibase rollback` block is never closed: end "
                "it with a line ending in `*/` (Liquibase refuses the file)",
            )
        )
    return body


def _head_fields(head: Head, body: _Body) -> None:
    if head.problem is None:
        body.add("changeset", f"{head.author}:{head.id}", head.line)
        body.add("author", head.author, head.line)
        body.add("id", head.id, head.line)
    for key, value in head.attributes.items():
        body.add(key, value, head.line)


def _block_line(body: _Body, number: int, line: str, block: int) -> int | None:
    """A line of a ``/* liquibase rollback`` block; ``None`` once the block is closed."""
    body.written[number], body.last = line, number
    end = _BLOCK_END.search(line)
    content = line[: end.start()] if end else line
    if content.strip() or not end:
        body.rollback[number] = content
    return None if end else block


def _literal_line(body: _Body, number: int, line: str) -> None:
    """A line inside a string or ``$$`` body: SQL, whatever it starts with."""
    body.forward[number], body.last = line, number
    if _ROLLBACK.match(line):
        body.rollback_problems.append(_inside_literal(number, "--rollback", UNPARSEABLE))


def _comment_line(body: _Body, number: int, line: str) -> int | None:
    """A comment line: a directive, or a comment of the SQL. Returns the line of a rollback block
    it opens."""
    if _BLOCK_START.match(line):
        body.written[number], body.last = line, number
        return number
    rollback = _ROLLBACK.match(line)
    if rollback:
        body.rollback[number], body.written[number], body.last = rollback.group(1), line, number
    elif _ROLLBACK_LIKE.match(line):
        body.written[number], body.last = line, number
        body.rollback_problems.append(_malformed_rollback(number, line))
    elif not _directive(body, number, line):
        body.forward[number] = line
        if line.strip().startswith("--"):
            body.comments.append(line.strip()[2:].strip())
    return None


def _directive(body: _Body, number: int, line: str) -> bool:
    """Record a ``--comment``, ``--validCheckSum``, ``--precondition...`` or ``--property``."""
    comment = _COMMENT.match(line)
    if comment:
        body.add("comment", comment.group(1).strip(), number)
        body.comments.append(comment.group(1).strip())
    elif checksum := _VALID_CHECKSUM.match(line):
        body.add("validCheckSum", checksum.group(1).strip(), number)
    elif condition := (_PRECONDITIONS.match(line) or _PRECONDITION.match(line)):
        body.add(condition.group(1).lower(), condition.group(2).strip(), number)
    elif not _PROPERTY.match(line):
        return False
    body.last = number
    return True


@dataclass(frozen=True)
class _Section:
    statements: tuple[Statement, ...] = ()
    wrapper: Wrapper | None = None
    problems: tuple[Problem, ...] = ()


def forward_section(layout: Layout, index: int, body: _Body) -> _Section:
    """The changeset's SQL as PostgreSQL's parser splits it; transaction control unwrapped."""
    head = layout.heads[index]
    start, end = layout.region(index)
    if start > end:
        return _Section()
    lines = [body.forward.get(n, "") for n in range(start, end + 1)]
    kinds = [
        layout.kinds[n - 1] if n in body.forward else LineKind.BLANK for n in range(start, end + 1)
    ]
    problems = list(meta_command_problems(kinds, first_line=start))
    text = blank_meta_commands("\n".join(lines), kinds)
    delimiter = head.attribute("endDelimiter")
    statements, problem = statements_of(
        text, start, delimiter, head.flag("splitStatements", True), SYNTAX
    )
    if problem is not None:
        return _Section(problems=(*problems, problem))
    section = unwrap(statements)
    return _Section(section.statements, section.wrapper, (*problems, *section.problems))


def rollback_section(layout: Layout, index: int, body: _Body) -> Rollback:
    """The changeset's documented rollback: ``--rollback`` lines, a block, or a reference."""
    head = layout.heads[index]
    if not body.rollback:
        return Rollback(
            source=None,
            line=head.line,
            notes=(_missing(head),),
            problems=tuple(body.rollback_problems),
        )
    first = min(body.written)
    text = "\n".join(body.written[n] for n in sorted(body.written))
    content = "\n".join(body.rollback[n] for n in sorted(body.rollback)).strip()
    base = Rollback(
        source=FORMAT,
        path=layout.path,
        line=first,
        text=text,
        problems=tuple(body.rollback_problems),
        no_transaction=not head.flag("runInTransaction", True),
    )
    if _EMPTY_ROLLBACK.match(content):
        return _documented_empty(base, content)
    if "changesetid" in content.lower():
        return _referenced(layout, index, base, content)
    return _rollback_sql(base, body.rollback, head)


def _documented_empty(base: Rollback, content: str) -> Rollback:
    word = _EMPTY_ROLLBACK.match(content)
    assert word is not None
    note = (
        f"`--rollback {word.group(1)}`: the changeset says there is nothing to undo; no rollback "
        "SQL is documented (irreversible as documented: roll back with --rollback-file FILE)"
    )
    return replace(base, notes=(note,))


def _referenced(layout: Layout, index: int, base: Rollback, content: str) -> Rollback:
    """``--rollback changesetId:<id> changesetAuthor:<author>``: an earlier changeset's SQL."""
    named = {key.lower(): value for key, value in _REFERENCE.findall(content)}
    target = next(
        (
            j
            for j in range(index)
            if layout.heads[j].id == named.get("id")
            and layout.heads[j].author == named.get("author")
        ),
        None,
    )
    path = named.get("path")
    if target is None or (path is not None and Path(path).name != layout.path.name):
        problem = Problem(
            UNPARSEABLE,
            base.line or 1,
            f"`--rollback {content}` names no earlier changeset of this file (changesetId and "
            "changesetAuthor of one above it); backout resolves these within the same file",
        )
        return replace(base, problems=(*base.problems, problem))
    other = layout.heads[target]
    section = forward_section(layout, target, sort_lines(layout, target))
    end = layout.region(target)[1]
    return replace(
        base,
        statements=section.statements,
        notes=(f"the rollback runs changeset {other.author}:{other.id}'s SQL (line {other.line})",),
        problems=(*base.problems, *(_as_rollback(p) for p in section.problems)),
        text="\n".join([base.text, *layout.lines[other.line - 1 : end]]),
        wrapper=section.wrapper,
    )


def _rollback_sql(base: Rollback, pieces: Mapping[int, str], head: Head) -> Rollback:
    """``--rollback <sql>`` lines: each piece at its own line, split by PostgreSQL's parser."""
    first, last = min(pieces), max(pieces)
    text = "\n".join(pieces.get(n, "") for n in range(first, last + 1))
    kinds = line_kinds(text)
    notes = comment_notes(text, kinds)
    problems = [*base.problems, *meta_command_problems(kinds, first_line=first)]
    statements, problem = statements_of(
        blank_meta_commands(text, kinds),
        first,
        head.attribute("rollbackEndDelimiter"),
        head.flag("rollbackSplitStatements", True),
        UNPARSEABLE,
    )
    if problem is not None:
        return replace(base, notes=notes, problems=_by_line([*problems, problem]))
    section = unwrap(statements)
    return replace(
        base,
        statements=section.statements,
        notes=notes,
        problems=_by_line([*problems, *section.problems]),
        wrapper=section.wrapper,
    )


def comment_notes(text: str, kinds: Sequence[LineKind]) -> tuple[str, ...]:
    """The ``--`` comments of a rollback's SQL, on their own lines or after a statement: the
    notes shown to the operator (``--rollback DROP TABLE t; -- WARNING: ...``)."""
    from pglast.parser import ParseError, scan

    try:
        tokens = scan(text)
    except ParseError:
        lines = zip(text.split("\n"), kinds, strict=True)
        found = [line.strip() for line, kind in lines if kind is LineKind.COMMENT]
    else:
        found = [text[t.start : t.end + 1] for t in tokens if t.name == "SQL_COMMENT"]
    return tuple(note for note in (c.strip()[2:].strip() for c in found) if note)


def _by_line(problems: Iterable[Problem]) -> tuple[Problem, ...]:
    return tuple(sorted(problems, key=lambda p: p.line))


# ---------------------------------------------------------------------------------------------
# Statements: delimiter lines, then PostgreSQL's parser


def statements_of(
    text: str, first_line: int, delimiter: str | None, split_statements: bool, code: str
) -> tuple[tuple[Statement, ...], Problem | None]:
    """The statements of a section's text (``first_line`` its first line): split at the lines
    that hold only the delimiter, then by PostgreSQL's parser; or the first problem."""
    parameter = _parameter(text)
    if parameter is not None:
        return (), _parameter_problem(parameter, first_line, code)
    lines = text.split("\n")
    cuts = delimiter_lines(lines, delimiter, literal_lines(text)) if split_statements else []
    statements: list[Statement] = []
    start = 0
    for cut in [*cuts, len(lines)]:
        chunk = "\n".join(lines[start:cut])
        if chunk.strip():
            try:
                statements.extend(split(chunk, first_line=first_line + start))
            except SqlSyntaxError as exc:
                return (), _syntax_problem(exc.problem, delimiter, code)
        start = cut + 1
    return tuple(statements), None


def delimiter_lines(
    lines: Sequence[str], delimiter: str | None, literal: frozenset[int]
) -> list[int]:
    """The lines (0-based) that end a statement as Liquibase reads them: the ``endDelimiter``
    alone on its line, or by default ``GO`` or ``/`` alone on theirs."""
    wanted = (delimiter or "").removeprefix("\\n").removeprefix("\n").strip().lower()
    words = {"go", "/"} if wanted in ("", ";") else {wanted}
    return [
        number
        for number, line in enumerate(lines)
        if line.strip().lower() in words and number not in literal
    ]


def _parameter(text: str) -> tuple[int, str] | None:
    """The first ``${name}`` outside comment lines (line index, text), or ``None``."""
    literal = literal_lines(text) if "${" in text else frozenset()
    for number, line in enumerate(text.split("\n")):
        comment = line.lstrip().startswith("--") and number not in literal
        found = None if comment else _PARAMETER.search(line)
        if found:
            return number, found.group()
    return None


def _parameter_problem(found: tuple[int, str], first_line: int, code: str) -> Problem:
    return Problem(
        code,
        first_line + found[0],
        f"`{found[1]}` is a Liquibase changelog parameter: backout runs the SQL as written "
        "and substitutes no parameter; write the value itself",
    )


def _syntax_problem(problem: Problem, delimiter: str | None, code: str) -> Problem:
    message = problem.message
    if delimiter not in (None, "", ";"):
        message += (
            f" (the changeset's delimiter is `{delimiter}`: backout ends a statement at a line "
            "that holds only the delimiter, or at `;`)"
        )
    if code == UNPARSEABLE:
        message = f"in the `--rollback` SQL: {message}"
    return Problem(code, problem.line, message)


def _as_rollback(problem: Problem) -> Problem:
    if problem.code != SYNTAX:
        return problem
    return Problem(
        UNPARSEABLE, problem.line, f"in the changeset it rolls back with: {problem.message}"
    )


# ---------------------------------------------------------------------------------------------
# A file read whole: not Liquibase formatted SQL, or formatted with no changeset


def read_whole(layout: Layout, folder: Path, name: str, version: str | None) -> MigrationFile:
    """A file of the folder without changesets, as one migration that ``apply`` refuses."""
    lines = layout.lines
    kinds = layout.kinds
    problems = [*layout.problems, _not_formatted(layout)]
    problems += meta_command_problems(kinds)
    try:
        statements = split(blank_meta_commands(layout.text, kinds))
    except SqlSyntaxError as exc:
        statements = ()
        problems.append(exc.problem)
    header = parse_header(list(lines))
    return MigrationFile(
        path=layout.path,
        folder=folder,
        name=name,
        version=version,
        header=header.fields,
        header_lines=header.lines,
        statements=statements,
        rollback=NO_ROLLBACK,
        checksum=_sha256(layout.text),
        comments=tuple(
            line.lstrip()[2:].strip()
            for line, kind in zip(lines, kinds, strict=True)
            if kind is LineKind.COMMENT
        ),
        problems=_by_line(problems),
        format=FORMAT,
    )


def _not_formatted(layout: Layout) -> Problem:
    if layout.formatted:
        return Problem(SYNTAX, 1, "this Liquibase file has no `--changeset <author>:<id>` line")
    return Problem(
        FORMAT_MISMATCH,
        1,
        f"{layout.path.name} is not Liquibase formatted SQL (its first line is not "
        "`--liquibase formatted sql`), but its folder is read as liquibase: Liquibase would run "
        "it whole with no rollback, or not at all; make it a changeset (`--liquibase formatted "
        "sql`, then `--changeset <author>:<id>` and `--rollback <sql>` lines) or move it out",
    )


# ---------------------------------------------------------------------------------------------
# Problems and small helpers


def _missing(head: Head) -> str:
    return (
        f"changeset {head.author}:{head.id} has no `--rollback` line: write the SQL that undoes it "
        "as `--rollback <sql>` lines under it (or `--rollback not required` when there is "
        "nothing to undo)"
    )


def _malformed_changeset(line: int) -> Problem:
    return Problem(
        SYNTAX,
        line,
        "not a changeset line Liquibase accepts: write `--changeset <author>:<id>` (no space "
        "after the colon), then attributes such as `runInTransaction:false`",
    )


def _malformed_rollback(line: int, text: str) -> Problem:
    return Problem(
        UNPARSEABLE,
        line,
        f"`{text.strip()}` is not a Liquibase rollback line, which Liquibase ignores: write "
        "`--rollback <sql>` (`--rollback` and one space before the SQL), or "
        "`--rollback not required`",
    )


def _inside_literal(line: int, marker: str, code: str) -> Problem:
    return Problem(
        code,
        line,
        f"a `{marker}` line inside a string or `$$` body: Liquibase reads files line by line "
        "and would take it out of the body, where PostgreSQL's parser keeps it in; move it out "
        "of the body, or reword the comment",
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
