"""The comment headings of a strategy-format migration: which one opens its rollback section,
which ones are remarks, and which heading ends the section.

Pure functions over the lines of one file (and their :class:`LineKind`). Teams write the
heading many ways: ``ROLLBACK``, ``-- Rollback:``, ``-- ROLLBACK (manual, if needed):``,
``-- Rollback SQL (if needed):``, ``-- DOWN / ROLLBACK (apply manually ...)``, ``-- If this
migration causes issues, rollback with:``, with or without ``====`` banners around it.

- **The section** is the first heading after the first line of SQL with no SQL after it; when
  every such heading has SQL after it, the last bare named one (``-- ROLLBACK``, nothing after
  its colon) is the section and that SQL is reported (psql would run it).
- **A remark** is a heading before the first line of SQL (the file's header, the leading comment
  block), or one with text after its colon (``-- Rollback: not needed for the index``) or in
  sentence form that more SQL follows: never a section, it never swallows the file; its own
  text (and the indented lines that continue it) is a note or a one-statement rollback.
- **Another heading ends the section**: ``-- VERIFICATION QUERIES``, ``-- Verify:``,
  ``-- Post-deploy checks``, ``-- Notes:``, or a title between banners: what follows it is not
  rollback SQL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from backout.migrations.statements import LineKind

BANNER_CHARS = "=-#*~_+ \t"

_WORD = r"(?:roll[\s-]?back|down|undo|revert)"
_NOUN = (
    r"(?:instructions?|plan|steps?|scripts?|sql|procedure|section|migration|queries|commands"
    r"|statements)"
)
_NAMED = rf"{_WORD}(?:\s*(?:/|&|\+|\bor\b|\band\b)\s*{_WORD})*(?:\s+{_NOUN})?"
_SENTENCE = (
    r"(?:if|in\s+case|should)\b[^:;()]{0,120}?"
    rf"(?:\b{_WORD}(?:\s+(?:with|using|via|by(?:\s+running)?))?"
    rf"|\b(?:run|use|execute|apply)\b[^:;()]{{0,120}}?\bto\s+{_WORD}(?:\s+(?:it|this(?:\s+migration)?))?)"
    rf"|to\s+{_WORD}(?:\s+this\s+(?:migration|change))?(?:,?\s+run(?:\s+the\s+following)?)?"
)
HEADING = re.compile(
    rf"^(?:\d+(?:\.\d+)*[.)]?\s+)?(?:(?P<named>{_NAMED})|{_SENTENCE})"
    r"(?:\s*\((?P<qualifier>[^()]*)\))?"
    r"\s*(?::\s*(?P<inline>.*))?$",
    re.IGNORECASE,
)
"""A rollback heading, once the comment marker and banners are off."""
_HEADING_WORDS = ("roll", "down", "undo", "revert")  # every heading holds one of them

_CHECK_HEADING = re.compile(
    r"^(?:(?:post|pre)[\s-]?(?:deploy(?:ment)?|migration|rollback|release|apply)\s+"
    r"|roll[\s-]?back\s+|after\s+(?:roll[\s-]?back|deploy(?:ment)?)\s*[,:-]?\s*)?"
    r"(?:verif(?:y|ication)|validat(?:e|ion)|sanity\s+checks?|smoke\s+tests?|health\s*checks?"
    r"|checks?|tests?|testing)"
    r"(?:\s+(?:the\s+)?roll[\s-]?back)?(?:\s+(?:quer(?:y|ies)|steps?|sql|checks?|scripts?))?"
    r"\s*(?:\([^()]*\))?\s*(?::.*)?$",
    re.IGNORECASE,
)
"""A verification heading: ends a rollback section, whatever follows its colon."""
_OTHER_HEADING = re.compile(
    r"^(?:notes?|references?|see\s+also|context|background|summary|description|changelog"
    r"|changes|history|monitoring|expected\s+(?:results?|output)|examples?"
    r"|forward(?:\s+(?:migration|sql))?|up(?:\s+migration)?"
    r"|post[\s-]?(?:deploy(?:ment)?|migration)(?:\s+steps?)?|follow[\s-]?ups?|todo"
    r"|open\s+questions|performance(?:\s+notes?)?|impact|risks?|dependencies)"
    r"\s*(?:\([^()]*\))?\s*:?$",
    re.IGNORECASE,
)
"""Any other heading: ends a rollback section when it is the whole line."""
_RULE = re.compile(r"([=\-#*~_])\1{2,}")
_NOT_A_TITLE = re.compile(
    r"^(?:warning|note|caution|important|danger|attention|step|nb)\b|^\d+[.)]|^[-*\u2022]\s",
    re.IGNORECASE,
)
_STATEMENT_START = re.compile(
    r"^(?:ALTER|ANALYZE|CREATE|DELETE|DO|DROP|GRANT|INSERT|REVOKE|SELECT|TRUNCATE|UPDATE|"
    r"VACUUM|WITH)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Heading:
    """A rollback heading: its line (0-based index), and what follows it on that line."""

    index: int
    inline: str = ""
    """The text after its colon (``DROP TABLE x;``, ``not needed for the index``)."""
    qualifier: str = ""
    """The text in parentheses (``manual, if needed``)."""
    named: bool = True
    """Named (``ROLLBACK``, ``Down``, ``Rollback SQL``), not a sentence (``If this migration
    causes issues, rollback with:``)."""

    @property
    def bare(self) -> bool:
        return not self.inline.strip()


def title_of(text: str) -> str:
    """A comment's text without the banners around it (``==== ROLLBACK ====``) or the brackets
    (``[ROLLBACK]``)."""
    title = text.strip(BANNER_CHARS)
    if title.startswith("["):
        title = title[1:].replace("]", "", 1).strip(BANNER_CHARS)
    return title


def match_heading(text: str) -> re.Match[str] | None:
    """``text`` (a comment's text, without ``--``) as a rollback heading, banners aside."""
    return HEADING.match(title_of(text))


def find_headings(lines: Sequence[str], kinds: Sequence[LineKind]) -> list[Heading]:
    """Every rollback heading on a comment line, in file order."""
    headings: list[Heading] = []
    for number in _lines_mentioning_a_heading_word("\n".join(lines)):
        if kinds[number] is LineKind.COMMENT:
            match = match_heading(lines[number].lstrip()[2:])
            if match:
                inline, qualifier = match.group("inline") or "", match.group("qualifier") or ""
                named = match.group("named") is not None
                headings.append(Heading(number, inline, qualifier.strip(), named))
    return headings


def _lines_mentioning_a_heading_word(text: str) -> list[int]:
    """The lines holding a heading word: a cheap test before the regex."""
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
class Layout:
    """Where the code of a file is: what the section and remarks are decided on."""

    first_code: int | None
    last_code: int

    @classmethod
    def of(cls, kinds: Sequence[LineKind]) -> Layout:
        """The first line of SQL (a psql meta-command is not one), and the last line of SQL or
        meta-command."""
        sql = [n for n, kind in enumerate(kinds) if kind is LineKind.CODE]
        code = [n for n, kind in enumerate(kinds) if kind in (LineKind.CODE, LineKind.META)]
        return cls(sql[0] if sql else None, code[-1] if code else -1)

    def leading(self, heading: Heading) -> bool:
        """Whether ``heading`` is in the header: before the first line of SQL."""
        return self.first_code is not None and heading.index < self.first_code


def section_heading(headings: Sequence[Heading], layout: Layout) -> Heading | None:
    """The heading that opens the rollback section, if any (see the module's docstring)."""
    candidates = [h for h in headings if not layout.leading(h)]
    for heading in candidates:
        if heading.index > layout.last_code:
            return heading
    bare = [h for h in candidates if h.bare and h.named]
    return bare[-1] if bare else None


def remark_headings(
    headings: Sequence[Heading], layout: Layout, section: Heading | None
) -> list[Heading]:
    """The headings that are remarks: in the header, or with text after them and SQL below."""
    return [
        h
        for h in headings
        if h != section
        and (layout.leading(h) or ((not h.bare or not h.named) and h.index < layout.last_code))
    ]


def remark_lines(lines: Sequence[str], kinds: Sequence[LineKind], heading: Heading) -> range:
    """The lines (0-based) a remark spans: its own, then the indented comment lines that
    continue it, as a header field continues (``--   DROP INDEX i;``). After a bare heading
    (``-- Rollback:``), banner rules and ``To rollback this migration:`` are passed over too.

    An empty comment line, a line that is not indented, SQL or another heading ends it, so
    commented-out SQL in a header is never part of it.
    """
    end = heading.index + 1
    while end < len(lines) and kinds[end] is LineKind.COMMENT:
        if not _continues(lines[end].lstrip()[2:], heading.bare):
            break
        end += 1
    return range(heading.index, end)


def _continues(text: str, bare: bool) -> bool:
    """Whether a comment line's ``text`` continues a remark (``bare``: one with nothing after
    its colon)."""
    if not text.strip():
        return False
    if is_rule(text) or _boilerplate(text):
        return bare
    if not text.startswith(("  ", "\t")):
        return False
    return not ends_section(text) and not match_heading(text)


def _boilerplate(text: str) -> bool:
    """``To rollback this migration:`` (a heading that only introduces the SQL)."""
    title = title_of(text)
    return title.lower().startswith("to ") and bool(HEADING.match(title))


def is_rule(text: str) -> bool:
    """Whether a comment's text is a banner rule (``=====``, ``-----``)."""
    stripped = text.strip()
    return bool(stripped) and not stripped.strip(BANNER_CHARS) and bool(_RULE.search(stripped))


def ends_section(text: str) -> bool:
    """Whether a comment's text is a heading that ends a rollback section by its words."""
    title = title_of(text)
    if not title or HEADING.match(title):
        return False
    return bool(_CHECK_HEADING.match(title) or _OTHER_HEADING.match(title))


def is_banner_title(text: str, *, rule_above: bool, rule_below: bool) -> bool:
    """Whether a comment's text is a section title between banner rules (any words): a rule
    above it, and a rule below it or all capitals. Notes, steps and SQL are not titles."""
    title = title_of(text)
    if not rule_above or not title or len(title) > 60 or ";" in title:
        return False
    if HEADING.match(title) or _NOT_A_TITLE.match(title) or _STATEMENT_START.match(title):
        return False
    letters = [c for c in title if c.isalpha()]
    return bool(letters) and (rule_below or all(c.isupper() for c in letters))
