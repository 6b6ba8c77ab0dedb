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

from backout.migrations.headings import (
    BANNER_CHARS,
    ends_section,
    is_banner_title,
    is_rule,
    match_heading,
)
from backout.migrations.statements import (
    META_COMMAND_MESSAGE,
    LineKind,
    Problem,
    SqlSyntaxError,
    Statement,
    is_complete_sql,
    split,
)

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


@dataclass(frozen=True)
class BlockLine:
    number: int
    text: str | None
    """The line with its comment markers removed; ``None`` for a line of uncommented code."""
    commented: bool = False
    """Whether it was a ``--`` comment line (its text is what follows the first ``--``)."""

    @property
    def blank(self) -> bool:
        return self.text is not None and not self.text.strip(BANNER_CHARS)

    @property
    def rule(self) -> bool:
        """Whether it is a banner rule (``=====``)."""
        return self.text is not None and is_rule(self.text)

    @property
    def commented_twice(self) -> bool:
        """``-- -- ...``: a line commented out once more, which no reader can tell the status of."""
        return self.commented and not self.blank and (self.text or "").lstrip().startswith("--")


def uncomment(
    lines: Sequence[str],
    kinds: Sequence[LineKind],
    heading: int,
    inline: str,
    stop: int | None = None,
) -> list[BlockLine]:
    """The lines after ``heading`` (0-based) up to ``stop`` (the end), comment markers off; the
    text after the heading's colon (``inline``) first when there is some."""
    block = [BlockLine(heading + 1, inline)] if inline.strip() else []
    for number in range(heading + 1, len(lines) if stop is None else stop):
        line, kind = lines[number], kinds[number]
        if kind is LineKind.COMMENT:
            block.append(BlockLine(number + 1, line.lstrip()[2:], commented=True))
            continue
        if kind is LineKind.BLOCK_COMMENT:
            text: str | None = _strip_block_markers(line)
        elif kind is LineKind.BLANK:
            text = ""
        else:
            text = None
        block.append(BlockLine(number + 1, text))
    return block


def section_end(block: Sequence[BlockLine], start: int = 0) -> int:
    """Where a rollback section stops in ``block``: at the first heading that ends it
    (``-- VERIFICATION QUERIES``, ``-- Notes:``, a title between banners), with the banner rule
    above that heading; ``len(block)`` when none does. ``start`` skips the heading's own text."""
    while start < len(block) and block[start].rule:
        start += 1  # the banner under the section's heading
    for j in range(start, len(block)):
        text = block[j].text
        if text is None or block[j].blank:
            continue
        above = j - 1 >= start and block[j - 1].rule
        below = j + 1 < len(block) and block[j + 1].rule
        if ends_section(text) or is_banner_title(text, rule_above=above, rule_below=below):
            end = j
            while end > start and block[end - 1].rule:
                end -= 1
            return end
    return len(block)


def _strip_block_markers(line: str) -> str:
    text = line.replace("*/", "  ")
    stripped = text.lstrip()
    if stripped.startswith("/*"):
        return text.replace("/*", "  ", 1)
    if stripped.startswith("*"):
        return text.replace("*", " ", 1)
    return text


DOUBLE_COMMENT = "rollback-double-comment"
_DOUBLE_COMMENT_MESSAGE = (
    "this line of the rollback is commented out twice (`-- --`): a step switched off or left "
    "to do by hand, so the rollback would look complete without it; comment it once if it "
    "must run, make it a plain note, or delete it"
)


def read_block(
    block: Sequence[BlockLine],
) -> tuple[tuple[Statement, ...], tuple[str, ...], tuple[Problem, ...]]:
    """Sort the lines of an uncommented block into statements, notes and problems."""
    block = [_without_heading(line) for line in block]
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
        if line.commented_twice:
            problems.append(Problem(DOUBLE_COMMENT, line.number, _DOUBLE_COMMENT_MESSAGE))
            i += 1
        elif text.lstrip().startswith("\\"):
            problems.append(Problem("psql-meta-command", line.number, META_COMMAND_MESSAGE))
            i += 1
        elif text.lstrip().startswith("--"):
            i += 1  # a comment inside a /* */ block: structure, not content
        elif _starts_statement(text):
            found, i = _statement_at(block, i)
            if isinstance(found, Problem):
                problems.append(found)
            elif isinstance(found, str):
                prose.append((line.number, found))
            else:
                segments.append(found)
                prose += [(block[found.end].number, found.remark), (line.number, "")]
        elif _ends_statement(text):
            problems.append(Problem("rollback-unparseable", line.number, _NOT_A_STATEMENT))
            i += 1
        else:
            prose.append((line.number, text.strip()))
            i += 1
    return _statements(block, segments), notes_from_comments(prose), tuple(problems)


_NOT_A_STATEMENT = (
    "this line ends with ';' like SQL but does not start a statement PostgreSQL accepts; fix "
    "the SQL, or reword it if it is a note"
)


def _without_heading(line: BlockLine) -> BlockLine:
    """A sub-heading (``-- Down:``, ``-- To rollback this migration:``) is structure: only the
    text after its colon, if any, is content."""
    if line.text is None or line.blank or line.commented_twice:
        return line
    match = match_heading(line.text)
    if match is None:
        return line
    return BlockLine(line.number, match.group("inline") or "", line.commented)


@dataclass(frozen=True)
class _Segment:
    """Lines ``start..end`` of a block, which the parser accepts as complete statements."""

    start: int
    end: int
    text: str
    remark: str = ""
    """A remark after the last statement's ``;`` on its last line (``(no data to unwind)``)."""


def _statements(block: Sequence[BlockLine], segments: Sequence[_Segment]) -> tuple[Statement, ...]:
    """Parse every accepted segment at once, each at its own lines (the rest left blank)."""
    if not segments:
        return ()
    lines = [""] * (segments[-1].end + 1)
    for segment in segments:
        lines[segment.start : segment.end + 1] = segment.text.split("\n")
    return split("\n".join(lines), first_line=block[0].number)


def _statement_at(block: Sequence[BlockLine], start: int) -> tuple[_Segment | str | Problem, int]:
    """The shortest run of lines from ``start`` ending with ``;`` (or with ``;`` and a remark)
    that the parser accepts."""
    end = start
    while end < len(block) and block[end].text is not None and not block[end].commented_twice:
        segment = _complete_at(block, start, end)
        if segment is not None:
            return segment, end + 1
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
            or following.commented_twice
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


def _complete_at(block: Sequence[BlockLine], start: int, end: int) -> _Segment | None:
    """Lines ``start..end`` as complete statements: the last one ending with ``;``, or with
    ``;`` and a remark after it."""
    text = block[end].text or ""
    if _ends_statement(text):
        joined = _join(block, start, end)
        if is_complete_sql(joined):
            return _Segment(start, end, joined, _trailing_comment(text))
    for at in _remark_cuts(text):
        joined = _join(block, start, end, last=text[:at])
        if is_complete_sql(joined):
            return _Segment(start, end, joined, _remark(text[at:]))
    return None


_REMARK = re.compile(
    r"^\s*(?:\((?P<paren>.*)\)|\[(?P<bracket>.*)\]|(?:--|#|//|\u2014|\u2013|<-|->|=>)\s*(?P<after>.*))\s*$"
)
"""A remark after a statement's ``;``: in parentheses or brackets, or after ``--``, ``#``, a
dash or an arrow. Plain words are not one: ``DELETE FROM t; WHERE id = 1`` is refused, never
run without its ``WHERE``."""


def _remark_cuts(text: str) -> list[int]:
    """Where a statement may end on a line that goes on with a remark: after each ``;`` that a
    remark follows, rightmost first."""
    return [
        at + 1
        for at in range(len(text) - 1, -1, -1)
        if text[at] == ";" and text[at + 1 :].strip() and _REMARK.match(text[at + 1 :])
    ]


def _remark(text: str) -> str:
    match = _REMARK.match(text)
    if match is None:
        return ""
    if match.group("paren") is not None:
        return text.strip()
    return (match.group("bracket") or match.group("after") or "").strip()


def _trailing_comment(text: str) -> str:
    """The ``-- remark`` after a line's last statement, if any."""
    for at, char in enumerate(text):
        if char == ";":
            rest = text[at + 1 :].strip()
            if not rest:
                return ""
            if rest.startswith("--"):
                return rest[2:].strip()
    return ""


_NEITHER = "; it is neither clean SQL nor clearly a note: fix the SQL, or reword the note"


def _join(block: Sequence[BlockLine], start: int, end: int, last: str | None = None) -> str:
    texts = [line.text or "" for line in block[start : end + 1]]
    if last is not None:
        texts[-1] = last
    texts[0] = _unmark(texts[0])
    return textwrap.dedent("\n".join(texts)).strip("\n")


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
        if not text.strip(BANNER_CHARS):
            close()
            continue
        if _LIST_MARKER.match(text):
            close()
        current.append(text.strip())
        if text.rstrip().endswith(":"):
            close()
    close()
    return tuple(notes)
