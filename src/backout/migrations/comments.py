"""Reading a commented rollback block: which lines are SQL, which are notes, which are problems.

Pure functions over the lines of one file. A line is SQL only when PostgreSQL's parser accepts
the statement it belongs to and that statement ends with ``;`` (as psql requires); prose
becomes a note for the operator; text that is neither is a problem with its line.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from backout.migrations.statements import (
    META_COMMAND_MESSAGE,
    LineKind,
    Problem,
    SqlSyntaxError,
    Statement,
    is_complete_sql,
    split,
)

_HEADING = re.compile(
    r"^(?:roll\s?back|down|undo)"
    r"(?:\s+(?:instructions?|plan|steps?|script|sql|procedure|section|migration))?"
    r"\s*(?::\s*(?P<inline>.*))?$",
    re.IGNORECASE,
)
_HEADING_WORDS = ("roll", "down", "undo")  # every heading holds one of them
_BANNER_CHARS = "=-#*~_+ \t"
_LIST_MARKER = re.compile(r"^(\s*)((?:\d+[.)]|[-*\u2022])\s+)")
_BOILERPLATE = re.compile(
    r"^(?:to (?:roll ?back|undo|revert)\b[^.]*|run(?: the following)?(?: sql)?):$", re.IGNORECASE
)
_SENTENCE_END = (".", ":", "!", "?")

# First words of the statements a rollback plausibly holds; anything else opens a note.
STATEMENT_KEYWORDS = frozenset(
    """ABORT ALTER ANALYZE BEGIN CALL CHECKPOINT CLUSTER COMMENT COMMIT COPY CREATE DEALLOCATE
    DELETE DISCARD DO DROP END EXECUTE GRANT IMPORT INSERT LOCK MERGE NOTIFY REASSIGN REFRESH
    REINDEX RELEASE RESET REVOKE ROLLBACK SAVEPOINT SECURITY SELECT SET START TABLE TRUNCATE
    UPDATE VACUUM VALUES WITH""".split()
)


def find_heading(lines: list[str], kinds: Sequence[LineKind]) -> tuple[int, str] | None:
    """The rollback heading: the first one with no uncommented code after it.

    A heading-like line earlier in the file (``-- Rollback: not needed``) followed by SQL is
    documentation, not the section. When every heading has code after it, the last one is the
    section and the code after it is reported.
    """
    headings: list[tuple[int, str]] = []
    for number in _lines_mentioning_a_heading_word("\n".join(lines)):
        if kinds[number] is LineKind.COMMENT:
            match = _HEADING.match(lines[number].lstrip()[2:].strip(_BANNER_CHARS))
            if match:
                headings.append((number, match.group("inline") or ""))
    if not headings:
        return None
    code = [n for n, kind in enumerate(kinds) if kind in (LineKind.CODE, LineKind.META)]
    last_code = code[-1] if code else -1
    for heading in headings:
        if heading[0] > last_code:
            return heading
    return headings[-1]


def _lines_mentioning_a_heading_word(text: str) -> list[int]:
    """The lines holding ``roll``, ``down`` or ``undo``: a cheap test before the regex."""
    lower = text.lower()
    found: set[int] = set()
    for word in _HEADING_WORDS:
        at = lower.find(word)
        while at >= 0:
            found.add(at)
            at = lower.find(word, at + 1)
    numbers: list[int] = []
    counted, number = 0, 0
    for at in sorted(found):
        number += text.count("\n", counted, at)
        counted = at
        if not numbers or numbers[-1] != number:
            numbers.append(number)
    return numbers


@dataclass(frozen=True)
class BlockLine:
    number: int
    text: str | None
    """The line with its comment markers removed; ``None`` for a line of uncommented code."""

    @property
    def blank(self) -> bool:
        return self.text is not None and not self.text.strip(_BANNER_CHARS)


def uncomment(
    lines: list[str], kinds: Sequence[LineKind], heading: int, inline: str
) -> list[BlockLine]:
    block = [BlockLine(heading + 1, inline)] if inline.strip() else []
    for number in range(heading + 1, len(lines)):
        line, kind = lines[number], kinds[number]
        if kind is LineKind.COMMENT:
            text: str | None = line.lstrip()[2:]
        elif kind is LineKind.BLOCK_COMMENT:
            text = _strip_block_markers(line)
        elif kind is LineKind.BLANK:
            text = ""
        else:
            text = None
        block.append(BlockLine(number + 1, text))
    return block


def _strip_block_markers(line: str) -> str:
    text = line.replace("*/", "  ")
    stripped = text.lstrip()
    if stripped.startswith("/*"):
        return text.replace("/*", "  ", 1)
    if stripped.startswith("*"):
        return text.replace("*", " ", 1)
    return text


def read_block(
    block: Sequence[BlockLine],
) -> tuple[tuple[Statement, ...], tuple[str, ...], tuple[Problem, ...]]:
    """Sort the lines of an uncommented block into statements, notes and problems."""
    segments: list[_Segment] = []
    problems: list[Problem] = []
    prose: list[tuple[int, str]] = []
    i = 0
    while i < len(block):
        line = block[i]
        if line.text is None or line.blank:
            prose.append((line.number, ""))
            i += 1
            continue
        text = _unmark(line.text)
        if text.lstrip().startswith("\\"):
            problems.append(Problem("psql-meta-command", line.number, META_COMMAND_MESSAGE))
            i += 1
        elif text.lstrip().startswith("--") or _HEADING.match(text.strip(_BANNER_CHARS)):
            i += 1  # a comment inside the comment, or a sub-heading: structure, not content
        elif _starts_statement(text):
            found, i = _statement_at(block, i)
            if isinstance(found, Problem):
                problems.append(found)
            elif isinstance(found, str):
                prose.append((line.number, found))
            else:
                segments.append(found)
                prose.append((line.number, ""))
        elif _ends_statement(text):
            problems.append(
                Problem(
                    "rollback-unparseable",
                    line.number,
                    "this line ends with ';' like SQL but does not start a statement PostgreSQL "
                    "accepts; fix the SQL, or reword it if it is a note",
                )
            )
            i += 1
        else:
            prose.append((line.number, text.strip()))
            i += 1
    return _statements(block, segments), notes_from_comments(prose), tuple(problems)


@dataclass(frozen=True)
class _Segment:
    """Lines ``start..end`` of a block, which the parser accepts as complete statements."""

    start: int
    end: int
    text: str


def _statements(block: Sequence[BlockLine], segments: Sequence[_Segment]) -> tuple[Statement, ...]:
    """Parse every accepted segment at once, each at its own lines (the rest left blank)."""
    if not segments:
        return ()
    lines = [""] * (segments[-1].end + 1)
    for segment in segments:
        lines[segment.start : segment.end + 1] = segment.text.split("\n")
    return split("\n".join(lines), first_line=block[0].number)


def _statement_at(block: Sequence[BlockLine], start: int) -> tuple[_Segment | str | Problem, int]:
    """The shortest run of lines from ``start`` ending with ``;`` that the parser accepts."""
    end = start
    while end < len(block) and block[end].text is not None:
        if _ends_statement(block[end].text or ""):
            text = _join(block, start, end)
            if is_complete_sql(text):
                return _Segment(start, end, text), end + 1
        end += 1
    # Nothing parses: the text up to the next blank line, ';' or statement is one unit.
    end = start
    while end + 1 < len(block):
        following = block[end + 1]
        current = (block[end].text or "").rstrip()
        if (
            _ends_statement(current)
            or current.endswith(_SENTENCE_END)
            or following.text is None
            or following.blank
            or _starts_statement(_unmark(following.text))
        ):
            break
        end += 1
    text = _join(block, start, end)
    step_title = _LIST_MARKER.match(block[start].text or "") is not None
    if ";" not in text and (step_title or text.rstrip().endswith(_SENTENCE_END)):
        raw = " ".join(line.text or "" for line in block[start : end + 1])
        return " ".join(raw.split()), end + 1
    try:
        split(text, first_line=block[start].number)
    except SqlSyntaxError as exc:
        message = exc.problem.message
        return Problem("rollback-unparseable", exc.problem.line, message + _NEITHER), end + 1
    return (
        Problem(
            "rollback-unterminated",
            block[start].number,
            "this looks like SQL but is not terminated by ';' (psql would not run it either); "
            "add the ';' if it is SQL, or reword it if it is a note",
        ),
        end + 1,
    )


_NEITHER = "; it is neither clean SQL nor clearly a note: fix the SQL, or reword the note"


def _join(block: Sequence[BlockLine], start: int, end: int) -> str:
    lines = [
        _unmark(line.text or "") if n == start else (line.text or "")
        for n, line in enumerate(block[start : end + 1], start)
    ]
    return textwrap.dedent("\n".join(lines)).strip("\n")


def _unmark(text: str) -> str:
    """Replace a list marker (``1.``, ``-``, ``*``) before a statement with spaces."""
    match = _LIST_MARKER.match(text)
    if match and _starts_statement(text[match.end() :]):
        return match.group(1) + " " * len(match.group(2)) + text[match.end() :]
    return text


# Statements whose first word alone would too often start a note ("Prepare the workers").
_TWO_WORD_STATEMENTS = re.compile(r"\s*prepare\s+transaction\b", re.IGNORECASE)


def _starts_statement(text: str) -> bool:
    word = re.match(r"\s*([A-Za-z]+)", text)
    if word and word.group(1).upper() in STATEMENT_KEYWORDS:
        return True
    return _TWO_WORD_STATEMENTS.match(text) is not None


def _ends_statement(text: str) -> bool:
    code = text.rstrip()
    if code.endswith(";"):
        return True
    comment = code.rfind("--")
    return comment > 0 and code[:comment].rstrip().endswith(";")


def notes_from_comments(lines: Sequence[tuple[int, str]]) -> tuple[str, ...]:
    """Group prose lines into notes; boilerplate (``To rollback this migration:``) is dropped.

    Consecutive lines form one note, except that a list item starts a new note and a line
    ending with ``:`` ends one.
    """
    notes: list[str] = []
    current: list[str] = []

    def close() -> None:
        note = " ".join(current)
        if note and not _BOILERPLATE.match(note):
            notes.append(note)
        current.clear()

    for _, text in lines:
        if not text.strip(_BANNER_CHARS):
            close()
            continue
        if _LIST_MARKER.match(text):
            close()
        current.append(text.strip())
        if text.rstrip().endswith(":"):
            close()
    close()
    return tuple(notes)
