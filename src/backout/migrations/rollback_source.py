"""Where a migration documents how to undo it, and the exact statements that undo it.

Pure functions. A *rollback source* finds the documented rollback of one migration; the sources
are tried in order and the first that finds one wins, so other conventions (dbmate's
``-- migrate:down``, golang-migrate's ``.down.sql``, ...) are one more class in ``SOURCES``.

The strategy document's convention is a comment block at the end of the file::

    -- ============================================================================
    -- ROLLBACK
    -- ============================================================================
    -- To rollback this migration:
    --   DROP TABLE IF EXISTS jobs CASCADE;
    --
    -- WARNING: This will delete all job data. Backup before rollback.

How the lines of that block are told apart (SQL, notes, problems) is
:mod:`backout.migrations.comments`'s business.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Protocol

from backout.migrations.comments import find_heading, notes_from_comments, read_block, uncomment
from backout.migrations.statements import (
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
    """Try each source in order; the first that finds a rollback wins.

    Whatever the source, a ``BEGIN; ... COMMIT;`` around the whole section is taken off its
    statements, and any other transaction control is one of its problems.
    """
    for source in SOURCES if sources is None else sources:
        found = source.find(migration)
        if found is not None:
            return replace(found, rollback=_unwrapped(found.rollback))
    return Found(NO_ROLLBACK)


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
    """The strategy document's commented ``ROLLBACK`` block at the end of the migration file."""

    name = COMMENT_BLOCK

    def sibling_names(self, migration: Path) -> Sequence[str]:
        return ()

    def find(self, migration: MigrationText) -> Found | None:
        lines, kinds = migration.lines, migration.kinds
        heading = find_heading(lines, kinds)
        if heading is None:
            return None
        index, inline = heading
        problems = tuple(
            Problem(
                "rollback-uncommented",
                number + 1,
                "SQL after the ROLLBACK heading is not commented out: psql would run it as part "
                "of the migration; comment it out (`--   `) or move it above the heading",
            )
            for number in range(index + 1, len(lines))
            if kinds[number] in (LineKind.CODE, LineKind.META)
        )
        block = uncomment(lines, kinds, index, inline)
        statements, notes, block_problems = read_block(block)
        rollback = Rollback(
            source=self.name,
            path=migration.path,
            line=index + 1,
            statements=statements,
            notes=notes,
            problems=block_problems,
            text="\n".join(lines[index:]),
        )
        return Found(rollback, forward_end_line=index + 1, problems=problems)


class SiblingFileSource:
    """A plain SQL file beside the migration: ``NNN_name.rollback.sql``."""

    name = SIBLING_FILE
    suffix = ".rollback.sql"

    def sibling_names(self, migration: Path) -> Sequence[str]:
        return (migration.name.removesuffix(".sql") + self.suffix,)

    def find(self, migration: MigrationText) -> Found | None:
        name = self.sibling_names(migration.path)[0]
        text = migration.siblings.get(name)
        if text is None:
            return None
        path = migration.path.with_name(name)
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
        rollback = Rollback(
            source=self.name,
            path=path,
            line=1,
            statements=statements,
            notes=notes_from_comments(comments),
            problems=tuple(problems),
            text=text,
        )
        return Found(rollback)


SOURCES: tuple[RollbackSource, ...] = (CommentBlockSource(), SiblingFileSource())
