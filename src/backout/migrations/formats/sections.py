"""Single-file formats whose up and down sections are marked by comments: goose, sql-migrate,
dbmate and node-pg-migrate. What they share lives here; each tool's module says how its markers
are written (a :class:`Grammar`).

Reading a file is pure (bytes in, :class:`~backout.migrations.file.MigrationFile` out):

1. :func:`scan`: the markers, found on comment lines only (PostgreSQL's scanner says which lines
   are comments, so a marker inside a ``$$`` body or a string never counts); a line that looks
   like a marker but is not one the tool reads (``-- MIGRATE:DOWN`` for dbmate, an indented
   ``-- +goose Down``) is a problem: the tool would take it for a comment and run the down
   SQL as part of the up section;
2. :func:`layout`: the up and down sections, from their marker to the next one (or the end);
   text before the first section is notes, SQL there is a problem;
3. :func:`read_section`: each section's statements, split by PostgreSQL's parser with their line
   numbers; a ``StatementBegin``/``StatementEnd`` block is split on its own (its last statement
   needs no ``;``), the ``BEGIN ... COMMIT`` around a whole section is taken off.

Problems with the markers themselves (a second ``Up``, a ``Down`` before the ``Up``, a
``StatementBegin`` never ended...) carry the code ``format-mismatch``: the file does not follow
its folder's format, so backout cannot tell which part is the down, and every command that runs
SQL refuses it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from backout.errors import MalformedMigrationError
from backout.migrations.comments import notes_from_comments
from backout.migrations.entry import Entry
from backout.migrations.file import MigrationFile, decode_text, parse_header
from backout.migrations.formats import detection, file_bytes
from backout.migrations.formats.markers import (
    FORMAT_MISMATCH,
    foreign_marker_problems,
    markers_of,
)
from backout.migrations.ignores import ignores_in
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


class Role(StrEnum):
    """What a marker line does."""

    UP = "up"
    DOWN = "down"
    BEGIN = "statement-begin"
    END = "statement-end"
    NO_TRANSACTION = "no-transaction"
    """The whole file runs outside a transaction (goose)."""
    ENVSUB_ON = "envsub-on"
    ENVSUB_OFF = "envsub-off"


SECTIONS = (Role.UP, Role.DOWN)


@dataclass(frozen=True)
class Marker:
    """One marker line of a file."""

    role: Role
    line: int
    text: str
    """The line as written, stripped."""
    no_transaction: bool = False
    """For an up or down marker: its own option says the section runs outside a transaction
    (sql-migrate's ``notransaction``, dbmate's ``transaction:false``)."""


MarkerReader = Callable[[str, int], "Marker | Problem | None"]
"""Reads one comment line (as written, and its number): a marker, a problem for a line that
looks like a marker the tool would not read, or ``None`` for an ordinary comment."""


@dataclass(frozen=True)
class Grammar:
    """How one tool marks sections."""

    tool: str
    spelling: Mapping[Role, str]
    """How the tool writes each marker it knows, for messages (``-- +goose Down``)."""
    read: MarkerReader
    up_first: bool = False
    """The down section must follow the up section (goose, dbmate)."""
    needs_semicolons: bool = False
    """A statement outside a ``StatementBegin`` block must end with ``;`` (the tool refuses the
    file otherwise: goose, sql-migrate)."""
    implicit_up: bool = False
    """A file without an up marker is all up section (node-pg-migrate)."""

    def spelled(self, role: Role) -> str:
        return f"`{self.spelling[role]}`"


TAKEN_FOR_A_COMMENT = (
    "would take it for a comment and run what follows as part of the section above"
)


def misread(
    line: int, written: str, tool: str, why: str, then: str = TAKEN_FOR_A_COMMENT
) -> Problem:
    """The problem of a line that looks like one of ``tool``'s markers but is not one it reads:
    ``why`` it is not, and what ``tool`` does ``then``."""
    return Problem(
        FORMAT_MISMATCH,
        line,
        f"`{written.strip()}` looks like a {tool} marker, but {why}: {tool} {then}; write the "
        f"marker exactly as {tool} reads it, or reword the comment",
    )


def _structure(line: int, message: str) -> Problem:
    return Problem(FORMAT_MISMATCH, line, message)


# --- 1. markers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scan:
    """A file's lines, what each line is, its markers and the problems finding them revealed."""

    lines: list[str]
    kinds: tuple[LineKind, ...]
    markers: tuple[Marker, ...]
    problems: tuple[Problem, ...]

    def having(self, *roles: Role) -> list[Marker]:
        return [m for m in self.markers if m.role in roles]


def scan(text: str, grammar: Grammar) -> Scan:
    """Find the markers on the comment lines of ``text``, and other tools' markers."""
    lines = text.split("\n")
    kinds = line_kinds(text)
    problems = list(foreign_marker_problems(lines, kinds, grammar.tool))
    foreign = {p.line for p in problems}
    markers = []
    for number, (line, kind) in enumerate(zip(lines, kinds, strict=True), 1):
        if kind is not LineKind.COMMENT or number in foreign:
            continue
        found = grammar.read(line, number)
        if isinstance(found, Marker):
            markers.append(found)
        elif found is not None:
            problems.append(found)
    return Scan(lines, kinds, tuple(markers), tuple(problems))


# --- 2. sections ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """The up or down section: its marker and the lines of its body."""

    role: Role
    marker: Marker | None
    """``None`` for node-pg-migrate's implicit up section (a file without an up marker)."""
    first: int
    """The first line of the body."""
    last: int
    """The last line of the body (``first - 1`` when it has none)."""

    @property
    def start(self) -> int:
        """Where the section starts: its marker's line."""
        return self.marker.line if self.marker else self.first

    def holds(self, line: int) -> bool:
        return self.first <= line <= self.last


@dataclass(frozen=True)
class Layout:
    up: Section | None
    down: Section | None
    preamble: int
    """The last line before the first section (0: the file starts with one)."""
    problems: tuple[Problem, ...]


def layout(found: Scan, grammar: Grammar) -> Layout:
    """The sections of a scanned file, and what is wrong with its markers."""
    problems: list[Problem] = []
    heads: list[Marker] = []
    for role in SECTIONS:
        markers = found.having(role)
        problems += [_duplicate(m, markers[0], grammar) for m in markers[1:]]
        heads += markers[:1]
    heads.sort(key=lambda m: m.line)
    end = len(found.lines)
    sections = {
        m.role: Section(m.role, m, m.line + 1, heads[i + 1].line - 1 if i + 1 < len(heads) else end)
        for i, m in enumerate(heads)
    }
    up, down = sections.get(Role.UP), sections.get(Role.DOWN)
    if up is None and grammar.implicit_up:
        up = Section(Role.UP, None, 1, down.start - 1 if down else end)
    problems += _order_problems(up, down, grammar)
    preamble = 0 if up and up.marker is None else (heads[0].line - 1 if heads else end)
    problems += _stray_markers(found, up, down, grammar)
    problems += _preamble_problems(found, preamble, grammar)
    return Layout(up, down, preamble, tuple(problems))


def _duplicate(marker: Marker, first: Marker, grammar: Grammar) -> Problem:
    return _structure(
        marker.line,
        f"a second {grammar.spelled(marker.role)} marker (the first is at line {first.line}): "
        f"a file has one {marker.role} section, and with two backout cannot tell which SQL is "
        "which; keep one marker",
    )


def _order_problems(up: Section | None, down: Section | None, grammar: Grammar) -> list[Problem]:
    spelled_up = grammar.spelled(Role.UP)
    if up is None:
        line = down.start if down else 1
        return [
            _structure(
                line,
                f"no {spelled_up} marker: {grammar.tool} reads a migration's SQL from its up "
                f"section; add {spelled_up} above the migration's SQL",
            )
        ]
    if up.marker is None and down is not None:
        return [
            _structure(
                down.start,
                f"{grammar.spelled(Role.DOWN)} without {spelled_up}: {grammar.tool} runs the "
                f"whole file, this down section included, as the migration; add {spelled_up} "
                "above the migration's SQL",
            )
        ]
    if grammar.up_first and down is not None and down.start < up.start:
        return [
            _structure(
                down.start,
                f"{grammar.spelled(Role.DOWN)} comes before {spelled_up} (line {up.start}): "
                f"{grammar.tool} refuses the file; put the up section first",
            )
        ]
    return []


def _stray_markers(
    found: Scan, up: Section | None, down: Section | None, grammar: Grammar
) -> list[Problem]:
    """``StatementBegin``/``StatementEnd`` outside both sections."""
    return [
        _structure(
            m.line,
            f"{grammar.spelled(m.role)} outside the up and down sections: {grammar.tool} "
            f"refuses it; put it after {grammar.spelled(Role.UP)} or {grammar.spelled(Role.DOWN)}",
        )
        for m in found.having(Role.BEGIN, Role.END)
        if not any(s is not None and s.holds(m.line) for s in (up, down))
    ]


def _preamble_problems(found: Scan, preamble: int, grammar: Grammar) -> list[Problem]:
    """SQL before the first section belongs to neither: reported once, at its first line."""
    for number in range(preamble):
        if found.kinds[number] in (LineKind.CODE, LineKind.META):
            return [
                _structure(
                    number + 1,
                    f"SQL before the first section marker: it is in neither the up nor the down "
                    f"section of this {grammar.tool} file; move it below "
                    f"{grammar.spelled(Role.UP)} (or into the down section)",
                )
            ]
    return []


# --- 3. statements ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """Lines of a section split together: a ``StatementBegin`` block, or the lines between."""

    first: int
    last: int
    block: bool


@dataclass(frozen=True)
class Part:
    """A section as backout runs it."""

    statements: tuple[Statement, ...] = ()
    wrapper: Wrapper | None = None
    problems: tuple[Problem, ...] = ()
    comments: tuple[tuple[int, str], ...] = ()
    """Its comment lines (not the markers): line and text after ``--``."""
    text: str = ""
    """The section exactly as written, marker line included."""
    notes: tuple[str, ...] = ()
    """What backout says about the section beyond its comments (goose's ENVSUB)."""


def chunks(found: Scan, section: Section, grammar: Grammar) -> tuple[list[Chunk], list[Problem]]:
    """The section's lines cut at its ``StatementBegin``/``StatementEnd`` markers."""
    out: list[Chunk] = []
    problems: list[Problem] = []
    start = section.first
    opened: Marker | None = None
    for m in found.having(Role.BEGIN, Role.END):
        if not section.holds(m.line):
            continue
        if (m.role is Role.BEGIN) == (opened is not None):
            problems.append(_unpaired(m, opened, grammar))
            continue
        out.append(Chunk(start, m.line - 1, block=opened is not None))
        start, opened = m.line + 1, (m if m.role is Role.BEGIN else None)
    if opened is not None:
        problems.append(_unpaired(None, opened, grammar))
    out.append(Chunk(start, section.last, block=opened is not None))
    return [c for c in out if c.last >= c.first], problems


def _unpaired(marker: Marker | None, opened: Marker | None, grammar: Grammar) -> Problem:
    begin, end = grammar.spelled(Role.BEGIN), grammar.spelled(Role.END)
    if marker is None:
        assert opened is not None
        return _structure(
            opened.line,
            f"{begin} is never ended: {grammar.tool} refuses the file; add {end} after the "
            "statement (before the next section marker)",
        )
    if opened is not None:
        return _structure(
            marker.line,
            f"{begin} inside the block opened at line {opened.line}: blocks do not nest; add "
            f"{end} before it",
        )
    return _structure(
        marker.line, f"{end} without a {begin} before it: add the {begin}, or remove this line"
    )


def read_section(found: Scan, section: Section, grammar: Grammar) -> Part:
    """The statements, comments, text and problems of one section."""
    pieces, problems = chunks(found, section, grammar)
    statements: list[Statement] = []
    for chunk in pieces:
        more, trouble = _chunk_statements(found, chunk, grammar, section.role)
        statements += more
        problems += trouble
    unwrapped = unwrap(statements)
    problems += unwrapped.problems
    problems += _substitution_problems(found, unwrapped.statements)
    markers = {m.line for m in found.markers}
    comments = tuple(
        (n, found.lines[n - 1].lstrip()[2:])
        for n in range(section.first, section.last + 1)
        if found.kinds[n - 1] is LineKind.COMMENT and n not in markers
    )
    return Part(
        statements=unwrapped.statements,
        wrapper=unwrapped.wrapper,
        problems=tuple(sorted(problems, key=lambda p: p.line)),
        comments=comments,
        text="\n".join(found.lines[section.start - 1 : section.last]),
        notes=_envsub_notes(found, section),
    )


def _chunk_statements(
    found: Scan, chunk: Chunk, grammar: Grammar, role: Role
) -> tuple[list[Statement], list[Problem]]:
    kinds = found.kinds[chunk.first - 1 : chunk.last]
    text = blank_meta_commands("\n".join(found.lines[chunk.first - 1 : chunk.last]), kinds)
    problems = list(meta_command_problems(kinds, chunk.first))
    try:
        statements = list(split(text, first_line=chunk.first))
    except SqlSyntaxError as exc:
        return [], [*problems, exc.problem]
    if statements and grammar.needs_semicolons and not chunk.block and not terminated(text):
        problems.append(_unterminated(statements[-1], grammar, role))
    return statements, problems


def _unterminated(statement: Statement, grammar: Grammar, role: Role) -> Problem:
    code = "rollback-unterminated" if role is Role.DOWN else "sql-syntax"
    return Problem(
        code,
        statement.line,
        f"the statement has no terminating `;`: {grammar.tool} refuses the file (a statement "
        f"ends at a line ending with `;`, or at {grammar.spelled(Role.END)}); add the `;`",
    )


def terminated(text: str) -> bool:
    """Whether the last token of ``text`` (comments aside) is ``;``."""
    from pglast.parser import ParseError, scan

    try:
        tokens = scan(text)
    except ParseError:
        return True  # the parser accepted it; nothing more to say
    code = [t for t in tokens if t.name not in ("SQL_COMMENT", "C_COMMENT")]
    return not code or code[-1].name == "ASCII_59"


_SUBSTITUTED = re.compile(r"\$(?:\{|[A-Za-z_])")


def _substitution_problems(found: Scan, statements: Sequence[Statement]) -> list[Problem]:
    """goose's ``ENVSUB ON``: a statement goose would rewrite (``${VAR}``, ``$VAR``, ``$$``...)
    is refused, as backout runs SQL exactly as written."""
    switches = found.having(Role.ENVSUB_ON, Role.ENVSUB_OFF)
    problems = []
    for statement in statements:
        on = [m for m in switches if m.line < statement.line]
        if on and on[-1].role is Role.ENVSUB_ON and _SUBSTITUTED.search(statement.sql):
            problems.append(
                _structure(
                    statement.line,
                    f"goose substitutes environment variables in this statement (ENVSUB ON at "
                    f"line {on[-1].line}), and backout runs SQL exactly as written: write the "
                    "values in, or put `-- +goose ENVSUB OFF` before it",
                )
            )
    return problems


# --- the model --------------------------------------------------------------------------------


def parse(
    entry: Entry, data: bytes, grammar: Grammar, problems: Sequence[Problem] = ()
) -> MigrationFile:
    """A marked file's bytes read into the model. Pure: ``problems`` are the name's."""
    text = decode_text(entry.path, data)
    found = scan(text, grammar)
    plan = layout(found, grammar)
    up = read_section(found, plan.up, grammar) if plan.up else Part()
    down = read_section(found, plan.down, grammar) if plan.down else None
    whole_file = bool(found.having(Role.NO_TRANSACTION))
    header = parse_header(found.lines)
    preamble = [(n, found.lines[n - 1].lstrip()[2:]) for n in _preamble_comments(found, plan)]
    forward = (*problems, *found.problems, *plan.problems, *up.problems)
    return MigrationFile(
        path=entry.path,
        folder=entry.folder,
        name=entry.name,
        version=entry.version,
        header=header.fields,
        header_lines=header.lines,
        statements=up.statements,
        rollback=_rollback(entry.path, plan.down, down, grammar, whole_file),
        checksum=hashlib.sha256(data).hexdigest(),
        comments=tuple(t.strip() for _, t in (*preamble, *up.comments)) + up.notes,
        problems=tuple(sorted(forward, key=lambda p: p.line)),
        wrapper=up.wrapper,
        format=grammar.tool,
        no_transaction=whole_file or _own_flag(plan.up),
        ignores=ignores_in(entry.path, text),
    )


def _preamble_comments(found: Scan, plan: Layout) -> Iterator[int]:
    markers = {m.line for m in found.markers}
    for number in range(1, plan.preamble + 1):
        if found.kinds[number - 1] is LineKind.COMMENT and number not in markers:
            yield number


def _own_flag(section: Section | None) -> bool:
    return section is not None and section.marker is not None and section.marker.no_transaction


def _envsub_notes(found: Scan, section: Section) -> tuple[str, ...]:
    """A note for each ``ENVSUB ON`` in force somewhere in ``section``."""
    switches = found.having(Role.ENVSUB_ON, Role.ENVSUB_OFF)
    before = [m for m in switches if m.line < section.first]
    inside = [m for m in switches if section.holds(m.line)]
    return tuple(
        f"goose: ENVSUB ON at line {m.line}; goose substitutes environment variables in the "
        "SQL after it, backout runs the SQL exactly as written"
        for m in (*before[-1:], *inside)
        if m.role is Role.ENVSUB_ON
    )


def _rollback(
    path: Path,
    section: Section | None,
    part: Part | None,
    grammar: Grammar,
    whole_file: bool,
) -> Rollback:
    if section is None or part is None:
        return NO_ROLLBACK
    return Rollback(
        source=grammar.tool,
        path=path,
        line=section.start,
        statements=part.statements,
        notes=notes_from_comments(_paragraphs(part.comments)) + part.notes,
        problems=part.problems,
        text=part.text,
        wrapper=part.wrapper,
        no_transaction=whole_file or _own_flag(section),
    )


def _paragraphs(comments: Sequence[tuple[int, str]]) -> list[tuple[int, str]]:
    """Comment lines with an empty one wherever they are not adjacent, so that comments apart
    in the file make separate notes."""
    out: list[tuple[int, str]] = []
    for line, text in comments:
        if out and out[-1][0] != line - 1:
            out.append((line - 1, ""))
        out.append((line, text))
    return out


# --- the format -------------------------------------------------------------------------------


class MarkedFormat:
    """What the four marked formats share: ``.sql`` files in one folder, a version in the name,
    detection by markers. A subclass sets ``name`` and ``grammar`` and says how names read."""

    name: str
    grammar: Grammar

    def listed(self, filename: str) -> bool:
        """Whether the tool takes ``filename`` for a migration."""
        return filename.endswith(".sql") and not filename.startswith(".")

    def version_of(self, filename: str) -> str | None:
        match = re.match(r"(\d+)_", filename)
        return match.group(1) if match else None

    def name_problems(self, entry: Entry) -> tuple[Problem, ...]:
        """What is wrong with a migration's file name, for this tool."""
        if entry.version is None:
            return (_name_problem(entry, f"{self.name} needs `<version>_<name>.sql`"),)
        return ()

    def entries(self, folder: Path) -> Iterable[Entry]:
        with os.scandir(folder) as found:
            for item in found:
                if self.listed(item.name) and item.is_file():
                    version = self.version_of(item.name)
                    stem = item.name.removesuffix(".sql")
                    yield Entry(folder / item.name, folder, stem, version, self.name)

    def read(self, entry: Entry) -> MigrationFile:
        try:
            data = entry.path.read_bytes()
        except OSError as exc:
            raise MalformedMigrationError(entry.path, f"cannot be read: {exc.strerror}") from None
        return parse(entry, data, self.grammar, self.name_problems(entry))

    def detects(self, folder: Path, names: list[str]) -> bool:
        return detected(folder, names) == self.name


def _name_problem(entry: Entry, why: str) -> Problem:
    return Problem(
        "name-format",
        1,
        f"{entry.path.name} has no version backout can record: {why} (a number, a sequence "
        "or a timestamp, before the first `_`); rename it before it is applied",
    )


# --- detection --------------------------------------------------------------------------------

MARKED = ("goose", "sql-migrate", "dbmate", "node-pg-migrate")
"""The formats detected here, in the order that breaks a tie."""
_NODE_NAME = re.compile(r"^(?:\d{13}|\d{17})_")
_ANY_MARKER = re.compile(
    rb"^[ \t]*--.*(?:\+goose|\+migrate|migrate:|(?:up|down)\s+migration)",
    re.IGNORECASE | re.MULTILINE,
)
_MARKER_WORDS = (b"+goose", b"+migrate", b"migrate:", b"migration")
"""Every match of ``_ANY_MARKER`` holds one of these (lower-cased)."""
_census: dict[Path, tuple[tuple[tuple[str, int, int], ...], dict[str, frozenset[str]]]] = {}


def detected(folder: Path, names: Sequence[str]) -> str | None:
    """The marked format of ``folder``: the tool whose markers most of its ``.sql`` files carry
    (node-pg-migrate's files may have none; its 13- or 17-digit names count for it)."""
    current = detection()
    if current is None:
        return _detected(folder, names)
    if folder not in current.marked:
        current.marked[folder] = _detected(folder, names)
    return current.marked[folder]


def _detected(folder: Path, names: Sequence[str]) -> str | None:
    tools = file_markers(folder, names)
    if not tools:
        return None
    count = {tool: sum(1 for found in tools.values() if tool in found) for tool in MARKED}
    if count["node-pg-migrate"]:
        count["node-pg-migrate"] += sum(
            1 for name, found in tools.items() if not found and _NODE_NAME.match(name)
        )
    best = max(MARKED, key=lambda tool: count[tool])  # the first of equals
    return best if count[best] and 2 * count[best] >= len(tools) else None


def file_markers(folder: Path, names: Sequence[str]) -> dict[str, frozenset[str]]:
    """``.sql`` file name -> the tools whose markers it carries (on comment lines); cached
    while the files are unchanged, so each format's ``detects`` reads them once between them."""
    signature = []
    for name in names:
        if name.endswith(".sql") and not name.startswith("."):
            try:
                info = (folder / name).stat()
            except OSError:
                continue
            signature.append((name, info.st_mtime_ns, info.st_size))
    cached = _census.get(folder)
    if cached is not None and cached[0] == tuple(signature):
        return cached[1]
    found = {name: _markers_in(folder / name) for name, _, _ in signature}
    _census[folder] = (tuple(signature), found)
    return found


def _has_marker(data: bytes) -> bool:
    """``_ANY_MARKER.search(data)``, run only on the lines that hold a marker word (a match lies
    within one line and holds one): the pattern's ``.*`` is slow over every comment line."""
    lowered = data.lower()  # ASCII only, as the pattern's IGNORECASE on bytes
    for word in _MARKER_WORDS:
        at = lowered.find(word)
        while at != -1:
            start, end = lowered.rfind(b"\n", 0, at) + 1, lowered.find(b"\n", at)
            end = len(data) if end == -1 else end
            if _ANY_MARKER.search(data, start, end):
                return True
            at = lowered.find(word, end)
    return False


def _markers_in(path: Path) -> frozenset[str]:
    data = file_bytes(path)
    if data is None or not _has_marker(data):
        return frozenset()
    text = data.decode("utf-8-sig", errors="replace").replace("\r\n", "\n")
    return frozenset(markers_of(text.split("\n"), line_kinds(text)) & set(MARKED))
