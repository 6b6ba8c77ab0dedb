"""Where a migration documents how to undo it, and the exact statements that undo it.

Pure functions. A *rollback source* finds the documented rollback of one migration; the sources
are tried in order and the first that finds rollback SQL wins (one that finds only notes yields
to a later one that finds SQL), so other conventions are one more class in ``SOURCES``.

The strategy document's convention is a comment block at the end of the file::

    -- ============================================================================
    -- ROLLBACK
    -- ============================================================================
    -- To rollback this migration:
    --   DROP TABLE IF EXISTS jobs CASCADE;
    --
    -- WARNING: This will delete all job data. Backup before rollback.

Teams also write it as a qualified heading (``-- ROLLBACK (manual, if needed):``), follow it with
a verification block (which ends the section), keep it in a script beside the migration
(``NNN_name.rollback.sql``, ``NNN_name_rollback.sql``, ``rollback_NNN_name.sql``,
``NNN_name.down.sql``), or write one line in the file's header (``-- Rollback: DROP TABLE x;``),
which is a remark and never a section. Which heading is which is
:mod:`backout.migrations.headings`'s business; how the lines of a block are told apart (SQL,
notes, problems) is :mod:`backout.migrations.comments`'s.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Protocol

from backout.migrations.comments import (
    BlockLine,
    notes_from_comments,
    read_block,
    section_end,
    uncomment,
)
from backout.migrations.headings import (
    Heading,
    Layout,
    find_headings,
    remark_headings,
    remark_lines,
    section_heading,
)
from backout.migrations.statements import (
    Flag,
    LineKind,
    Problem,
    SqlSyntaxError,
    Statement,
    blank_meta_commands,
    line_kinds,
    line_kinds_from,
    meta_command_problems,
    split,
)
from backout.migrations.transaction_control import Wrapper, unwrap

COMMENT_BLOCK = "comment-block"
SIBLING_FILE = "sibling-file"
REMARK = "remark"


@dataclass(frozen=True)
class Rollback:
    """The documented rollback of one migration."""

    source: str | None
    """``comment-block``, ``sibling-file``, ...; ``None`` when the migration documents none."""
    path: Path | None = None
    """The file that holds it (the migration itself, or a sibling file)."""
    line: int | None = None
    """The line of its heading (or 1 for a sibling file)."""
    statements: tuple[Statement, ...] = ()
    notes: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    text: str = ""
    """The section exactly as written, for checksums and diffs."""
    wrapper: Wrapper | None = None
    """The ``BEGIN; ... COMMIT;`` around the whole section, taken off ``statements``."""
    no_transaction: bool = False
    """The format says this section runs outside a transaction: statement by statement."""

    @property
    def found(self) -> bool:
        return self.source is not None

    @property
    def checksum(self) -> str | None:
        """SHA-256 of the section's text, or ``None`` when there is no rollback."""
        if self.source is None:
            return None
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


NO_ROLLBACK = Rollback(source=None)


@dataclass(frozen=True)
class MigrationText:
    """What a rollback source looks at: the migration's text and the files beside it."""

    path: Path
    text: str
    siblings: Mapping[str, str] = field(default_factory=dict)
    """File name -> text of the files beside the migration that a source asked for."""

    @cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @cached_property
    def statements(self) -> tuple[Statement, ...] | None:
        """The whole file as PostgreSQL's parser splits it (the rollback block is comments);
        ``None`` when the parser rejects it."""
        try:
            return split(self.text)
        except SqlSyntaxError:
            return None

    @cached_property
    def kinds(self) -> tuple[LineKind, ...]:
        """The kind of each line, computed once for every source and the caller."""
        if self.statements is not None and "/*" not in self.text:
            return line_kinds_from(self.lines, self.statements)
        return line_kinds(self.text)

    @cached_property
    def headings(self) -> tuple[Heading, ...]:
        """Every rollback heading on a comment line."""
        return tuple(find_headings(self.lines, self.kinds))

    @cached_property
    def layout(self) -> Layout:
        """Where the SQL of the file is."""
        return Layout.of(self.kinds)

    @cached_property
    def section(self) -> Heading | None:
        """The heading of the ROLLBACK section (see :mod:`backout.migrations.headings`)."""
        return section_heading(self.headings, self.layout)

    @cached_property
    def remarks(self) -> tuple[Heading, ...]:
        """The rollback headings that are remarks, not a section: in the header, or with text
        after them and SQL below."""
        return tuple(remark_headings(self.headings, self.layout, self.section))


@dataclass(frozen=True)
class Found:
    """A source's answer: the rollback, and where the forward SQL ends (``None``: end of file)."""

    rollback: Rollback
    forward_end_line: int | None = None
    """The first line (1-based) that is no longer forward SQL."""
    problems: tuple[Problem, ...] = ()
    """Problems with the migration file itself that finding the rollback revealed."""


class RollbackSource(Protocol):
    """A convention for documenting rollbacks."""

    name: str

    def sibling_names(self, migration: Path) -> Sequence[str]:
        """Names of the files beside ``migration`` this source wants to read."""
        ...

    def find(self, migration: MigrationText) -> Found | None:
        """The documented rollback, or ``None`` when this convention is not used."""
        ...


def find_rollback(
    migration: MigrationText, sources: Sequence[RollbackSource] | None = None
) -> Found:
    """Try each source in order; the first that finds rollback SQL (or a problem) wins, else
    the first that finds a rollback at all (a section that only says ``see 007_x_rollback.sql``
    yields to that file).

    Whatever the source, a ``BEGIN; ... COMMIT;`` around the whole section is taken off its
    statements, and any other transaction control is one of its problems.
    """
    first: Found | None = None
    for source in SOURCES if sources is None else sources:
        found = source.find(migration)
        if found is None:
            continue
        if found.rollback.statements or found.rollback.problems or found.problems:
            return replace(found, rollback=_unwrapped(found.rollback))
        first = first or found
    return first or Found(NO_ROLLBACK)


def _unwrapped(rollback: Rollback) -> Rollback:
    section = unwrap(rollback.statements)
    if section.wrapper is None and not section.problems:
        return rollback
    problems = tuple(sorted((*rollback.problems, *section.problems), key=lambda p: p.line))
    return replace(
        rollback, statements=section.statements, wrapper=section.wrapper, problems=problems
    )


def sibling_names(migration: Path, sources: Sequence[RollbackSource] | None = None) -> list[str]:
    """Every sibling file name the sources want to read for ``migration``."""
    names: list[str] = []
    for source in SOURCES if sources is None else sources:
        names.extend(source.sibling_names(migration))
    return names


class CommentBlockSource:
    """The strategy document's commented ``ROLLBACK`` block at the end of the migration file.

    The section runs from its heading to the end of the file, or to the next heading that is
    not a rollback one (``-- VERIFICATION QUERIES``, ``-- Notes:``...): SQL after that heading
    is not rollback SQL, and a statement there that is not a query is reported.
    """

    name = COMMENT_BLOCK

    def sibling_names(self, migration: Path) -> Sequence[str]:
        return ()

    def find(self, migration: MigrationText) -> Found | None:
        lines, kinds, heading = migration.lines, migration.kinds, migration.section
        if heading is None:
            return None
        block = uncomment(lines, kinds, heading.index, heading.inline)
        end = section_end(block, 0 if heading.bare else 1)
        section, tail = block[:end], block[end:]
        statements, notes, problems = read_block(section)
        stop = tail[0].number - 1 if tail else len(lines)
        rollback = Rollback(
            source=self.name,
            path=migration.path,
            line=heading.index + 1,
            statements=statements,
            notes=qualified(heading, notes),
            problems=(*problems, *_after_section(tail)),
            text="\n".join(lines[heading.index : stop]),
        )
        return Found(rollback, heading.index + 1, _uncommented(kinds, heading.index))


def _uncommented(kinds: Sequence[LineKind], heading: int) -> tuple[Problem, ...]:
    return tuple(
        Problem(
            "rollback-uncommented",
            number + 1,
            "SQL after the ROLLBACK heading is not commented out: psql would run it as part "
            "of the migration; comment it out (`--   `) or move it above the heading",
        )
        for number in range(heading + 1, len(kinds))
        if kinds[number] in (LineKind.CODE, LineKind.META)
    )


def qualified(heading: Heading, notes: tuple[str, ...]) -> tuple[str, ...]:
    """The notes of a section, its heading's qualifier first (``(only if the backfill ran)``)."""
    return (f"({heading.qualifier})", *notes) if heading.qualifier else notes


OUTSIDE_SECTION = "rollback-outside-section"


def _after_section(tail: Sequence[BlockLine]) -> tuple[Problem, ...]:
    """A statement after the heading that ends the section, other than a query: the rollback
    may have been cut short, so it is reported rather than left out in silence."""
    if not tail:
        return ()
    at = next((n for n, line in enumerate(tail) if not line.rule), 0)
    title = tail[at].number
    heading = tail[at].text or ""
    if ":" in heading:  # -- Verify: <sql>: the text after the colon is read too
        tail = [*tail[:at], replace(tail[at], text=heading.split(":", 1)[1]), *tail[at + 1 :]]
    statements, _, _ = read_block(tail)
    return tuple(
        Problem(
            OUTSIDE_SECTION,
            s.line,
            f"this SQL comes after the heading at line {title}, which ends the ROLLBACK "
            "section: backout would not run it; move it above that heading if it is part of "
            "the rollback, or out of the comments if it is not",
        )
        for s in statements
        if not _is_query(s)
    )


_QUERIES = frozenset({"SelectStmt", "ExplainStmt", "VariableShowStmt"})


def _is_query(statement: Statement) -> bool:
    """A statement that only reads (a verification query, ``ANALYZE``)."""
    if statement.has(Flag.DESTROYS_DATA):
        return False
    if statement.kind == "VacuumStmt":
        return not statement.has(Flag.NON_TRANSACTIONAL)
    return statement.kind in _QUERIES


class SiblingFileSource:
    """A plain SQL file beside the migration, named after it: ``NNN_name.rollback.sql``,
    ``NNN_name.down.sql``, ``NNN_name_rollback.sql``, ``rollback_NNN_name.sql``... (see
    :func:`rollback_file_names`; the first that exists is the rollback)."""

    name = SIBLING_FILE

    def sibling_names(self, migration: Path) -> Sequence[str]:
        return rollback_file_names(migration.name)

    def find(self, migration: MigrationText) -> Found | None:
        for name in self.sibling_names(migration.path):
            text = migration.siblings.get(name)
            if text is not None:
                return Found(_plain_file(migration.path.with_name(name), text, self.name))
        return None


def _plain_file(path: Path, text: str, source: str) -> Rollback:
    kinds = line_kinds(text)
    problems = list(meta_command_problems(kinds))
    try:
        statements = split(blank_meta_commands(text, kinds))
    except SqlSyntaxError as exc:
        statements = ()
        problems.append(exc.problem)
    comments = [
        (n + 1, line.lstrip()[2:])
        for n, line in enumerate(text.split("\n"))
        if kinds[n] is LineKind.COMMENT
    ]
    return Rollback(
        source=source,
        path=path,
        line=1,
        statements=statements,
        notes=notes_from_comments(comments),
        problems=tuple(problems),
        text=text,
    )


ROLLBACK_FILE_PATTERNS = ("{}.rollback.sql", "{}.down.sql", "{}_rollback.sql", "{}-rollback.sql")
ROLLBACK_FILE_PREFIXES = ("rollback_", "rollback-")
_SCRIPT_SUFFIXES = tuple(p.format("") for p in ROLLBACK_FILE_PATTERNS)
_VERSION = re.compile(r"^(\d+)(?=[_-])")


def rollback_file_names(migration: str) -> tuple[str, ...]:
    """The names a rollback script of the migration file ``migration`` may have, in the order
    they are looked for: after its name (``007_add_x.rollback.sql``, ``007_add_x.down.sql``,
    ``007_add_x_rollback.sql``, ``007_add_x-rollback.sql``, ``rollback_007_add_x.sql``,
    ``rollback-007_add_x.sql``), then after its version alone (``007_rollback.sql``...)."""
    stem = migration.removesuffix(".sql")
    version = _VERSION.match(stem)
    stems = [stem, version.group(1)] if version else [stem]
    return tuple(
        name
        for named in stems
        for name in (
            *(pattern.format(named) for pattern in ROLLBACK_FILE_PATTERNS),
            *(f"{prefix}{named}.sql" for prefix in ROLLBACK_FILE_PREFIXES),
        )
    )


def is_rollback_file_name(name: str) -> bool:
    """Whether a file in a strategy-format folder is a rollback script by its name (never a
    migration): ``*.rollback.sql``, ``*.down.sql``, ``*_rollback.sql``, ``*-rollback.sql``,
    ``rollback_*.sql``, ``rollback-*.sql`` (any case)."""
    lower = name.lower()
    return lower.endswith(".sql") and (
        lower.endswith(_SCRIPT_SUFFIXES) or lower.startswith(ROLLBACK_FILE_PREFIXES)
    )


class RemarkSource:
    """A rollback heading in the file's header, or one with text after it that SQL follows
    (``-- Rollback: DROP TABLE x;`` above the SQL): a one-statement rollback when its text is
    SQL, a note otherwise; never a section that swallows the SQL below it. Used when the file
    has no ROLLBACK section and no rollback file."""

    name = REMARK

    def sibling_names(self, migration: Path) -> Sequence[str]:
        return ()

    def find(self, migration: MigrationText) -> Found | None:
        remarks = [remark_rollback(migration, heading) for heading in migration.remarks]
        chosen = [r for r in remarks if r.statements or r.problems] or remarks
        return Found(chosen[0]) if chosen else None


def remark_rollback(migration: MigrationText, heading: Heading) -> Rollback:
    """What the remark at ``heading`` documents, as a rollback."""
    lines, kinds = migration.lines, migration.kinds
    span = remark_lines(lines, kinds, heading)
    block = uncomment(lines, kinds, heading.index, "", span.stop)
    block = [BlockLine(heading.index + 1, heading.inline), *block]
    statements, notes, problems = read_block(block)
    return Rollback(
        source=REMARK,
        path=migration.path,
        line=heading.index + 1,
        statements=statements,
        notes=qualified(heading, notes),
        problems=problems,
        text="\n".join(lines[span.start : span.stop]),
    )


def stray_remarks(migration: MigrationText, rollback: Rollback) -> tuple[Problem, ...]:
    """Remarks elsewhere in the file that document SQL the rollback does not hold: which one is
    right cannot be told, so each is a problem on its line."""
    held = {_normal(s.sql) for s in rollback.statements}
    problems = []
    for heading in migration.remarks:
        if rollback.source == REMARK and heading.index + 1 == rollback.line:
            continue
        missing = [
            s for s in remark_rollback(migration, heading).statements if _normal(s.sql) not in held
        ]
        if missing:
            problems.append(_stray(heading, missing[0], rollback))
    return tuple(problems)


def _stray(heading: Heading, statement: Statement, rollback: Rollback) -> Problem:
    if rollback.source == SIBLING_FILE and rollback.path is not None:
        where = rollback.path.name
    else:
        where = f"the {'remark' if rollback.source == REMARK else 'ROLLBACK section'} at line "
        where += str(rollback.line)
    return Problem(
        OUTSIDE_SECTION,
        heading.index + 1,
        f"this rollback remark documents `{statement.sql}`, which the rollback backout runs "
        f"({where}) does not hold: move it into the ROLLBACK section, or make the remark a "
        "plain note",
    )


def _normal(sql: str) -> str:
    return " ".join(sql.split()).lower()


SOURCES: tuple[RollbackSource, ...] = (CommentBlockSource(), SiblingFileSource(), RemarkSource())
