"""Properties of the strategy reader on generated files: headers with ``Rollback:`` and
``Verify:`` lines and commented-out SQL, any heading variant (case, qualifier, banners, colon or
not, sentence), rollback bodies with remarks after their ``;``, verification blocks after them,
LF or CRLF. Whatever the layout, the forward statements come back intact, the rollback exactly,
with its notes, and nothing is a problem."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pglast
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from backout.migrations.file import parse_migration

PATH = Path("/m/001_generated.sql")
BANNER = "-- " + "=" * 60

identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
FORWARD = (
    "CREATE TABLE {0} (id bigint PRIMARY KEY, {1} text)",
    "ALTER TABLE {0}\n  ADD COLUMN {1} text DEFAULT 'Rollback: not here'",
    "CREATE INDEX {1}_idx ON {0} ({1})",
    "COMMENT ON TABLE {0} IS '-- ROLLBACK'",
    "CREATE FUNCTION {0}() RETURNS int AS $$\nBEGIN\n  -- ROLLBACK\n  -- Verify: nothing\n"
    "  RETURN 1;\nEND;\n$$ LANGUAGE plpgsql",
    "INSERT INTO {0} (id) VALUES (1)",
)
ROLLBACK = (
    "DROP TABLE IF EXISTS {0}",
    "ALTER TABLE {0}\n  DROP COLUMN IF EXISTS {1}",
    "DROP INDEX IF EXISTS {1}_idx",
    "DELETE FROM {0} WHERE id = 1",
    "DROP FUNCTION IF EXISTS {0}()",
)
NAMED = (
    "rollback",
    "roll back",
    "down",
    "undo",
    "rollback sql",
    "rollback plan",
    "down / rollback",
)
QUALIFIERS = ("manual", "manual, if needed", "in case of failure", "only if …")
SENTENCES = (
    "If this migration causes issues, rollback with",
    "If needed, roll back with",
    "To rollback this migration",
)
CASES: tuple[Callable[[str], str], ...] = (str.upper, str.lower, str.title, str.strip)
REMARKS = {
    "": None,
    "  (no data to unwind)": "(no data to unwind)",
    "  -- safe to re-run": "safe to re-run",
    " [optional]": "optional",
}
WARNING = "WARNING: this deletes data. Back it up first."
ENDINGS = ("VERIFICATION QUERIES", "Verify:", "Verification:", "Post-deploy checks", "Notes:")


def sql(template: str, draw: Callable[[st.SearchStrategy[str]], str]) -> str:
    text = template.format(draw(identifiers), draw(identifiers))
    try:
        pglast.parse_sql(text)
    except pglast.parser.ParseError:
        assume(False)  # an identifier that is a reserved word
    return text


@st.composite
def headings(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A section heading, and the note its qualifier makes."""
    case = draw(st.sampled_from(CASES))
    qualifier = draw(st.sampled_from(("", *QUALIFIERS)))
    if draw(st.booleans()):
        words = draw(st.sampled_from(NAMED)) + (f" ({qualifier})" if qualifier else "")
        notes = [f"({case(qualifier)})"] if qualifier else []
    else:
        words, notes = draw(st.sampled_from(SENTENCES)), []
    text = case(words) + draw(st.sampled_from(("", ":")))
    style = draw(st.sampled_from(("plain", "banners", "inline-banner", "hashes")))
    if style == "banners":
        return f"{BANNER}\n-- {text}\n{BANNER}", notes
    if style == "inline-banner":
        return f"-- ==== {text} ====", notes
    if style == "hashes":
        return f"-- ## {text}", notes
    return f"--{draw(st.sampled_from((' ', '   ')))}{text}", notes


@dataclass(frozen=True)
class Body:
    statements: list[str]
    notes: list[str]
    lines: list[str]


@st.composite
def bodies(draw: st.DrawFn) -> Body:
    templates = draw(st.lists(st.sampled_from(ROLLBACK), min_size=1, max_size=4))
    statements = [sql(t, draw) for t in templates]
    indent = draw(st.sampled_from(("-- ", "--   ", "--\t")))
    lines, notes = [], []
    for statement in statements:
        remark = draw(st.sampled_from(sorted(REMARKS)))
        lines += [f"{indent}{line}" for line in f"{statement};{remark}".split("\n")]
        if REMARKS[remark]:
            notes.append(str(REMARKS[remark]))
    if draw(st.booleans()):
        lines += ["--", f"-- {WARNING}"]
        notes.append(WARNING)
    return Body(statements, notes, lines)


@dataclass(frozen=True)
class Case:
    text: str
    forward: list[str]
    rollback: list[str]
    notes: list[str]


@st.composite
def header_lines(draw: st.DrawFn, rollback: str | None) -> list[str]:
    fields = ["-- Migration: 001_generated.sql", "-- Purpose: generated", "-- Phase: 1"]
    if rollback is not None:
        fields.append(f"-- Rollback: {rollback}")
    if draw(st.booleans()):
        fields.append("-- Verify: SELECT count(*) FROM pg_class;")
    if draw(st.booleans()):
        fields += ["--", "-- CREATE TABLE commented_out (id int);", "-- DROP TABLE commented_out;"]
    return list(draw(st.permutations(fields)))


@st.composite
def header_rollback(draw: st.DrawFn, body: Body | None) -> tuple[str | None, list[str], list[str]]:
    """A ``-- Rollback:`` header line's text (or none), with the rollback statements and notes
    it makes when the file has no section."""
    choice = draw(st.sampled_from(("none", "prose", "sql")))
    if choice == "none":
        return None, [], []
    if choice == "prose":
        prose = draw(st.sampled_from(("not needed for the index", "see below", "none")))
        return prose, [], [prose]
    statement = body.statements[0] if body else sql(draw(st.sampled_from(ROLLBACK)), draw)
    remark = draw(st.sampled_from(sorted(REMARKS)))
    flat = " ".join(statement.split())
    return f"{flat};{remark}", [flat], [str(REMARKS[remark])] if REMARKS[remark] else []


@st.composite
def migrations(draw: st.DrawFn) -> Case:
    forward = [
        sql(t, draw) for t in draw(st.lists(st.sampled_from(FORWARD), min_size=1, max_size=4))
    ]
    body = draw(bodies()) if draw(st.booleans()) else None
    remark, remark_sql, remark_notes = draw(header_rollback(body))
    lines = [*draw(header_lines(remark)), "", *(f"{s};" for s in forward), ""]
    if body is None:
        rollback, notes = remark_sql, remark_notes
    else:
        heading, qualifier = draw(headings())
        lines += [heading, *body.lines]
        rollback, notes = body.statements, qualifier + body.notes
        if draw(st.booleans()):
            ending = draw(st.sampled_from(ENDINGS))
            lines += ["", f"-- {ending}", "--   SELECT count(*) FROM pg_class;", "--   SELECT 1;"]
    text = "\n".join(lines) + "\n"
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    return Case(text, forward, rollback, notes)


@given(migrations())
@settings(max_examples=500, deadline=None)
def test_generated_files_round_trip_through_the_reader(case: Case) -> None:
    m = parse_migration(PATH, case.text.encode())

    assert [s.sql for s in m.statements] == case.forward
    assert [s.sql for s in m.rollback.statements] == case.rollback
    assert list(m.rollback.notes) == case.notes
    assert m.all_problems == ()


@given(st.lists(st.sampled_from(FORWARD), min_size=1, max_size=3), st.data())
@settings(max_examples=200, deadline=None)
def test_no_header_ever_swallows_the_forward_sql(templates: list[str], data: st.DataObject) -> None:
    forward = [sql(t, data.draw) for t in templates]
    header = data.draw(
        st.lists(
            st.sampled_from(
                (
                    "-- Rollback: not needed for the index",
                    "-- ROLLBACK",
                    "-- ROLLBACK (manual, if needed):",
                    "-- Rollback:",
                    "--   DROP TABLE x;",
                    "-- DROP TABLE y;",
                    "-- Down",
                    BANNER,
                    "--",
                    "",
                    "-- If this migration causes issues, rollback with:",
                    "-- -- DROP TABLE z;",
                )
            ),
            max_size=8,
        )
    )
    text = "\n".join([*header, *(f"{s};" for s in forward)]) + "\n"

    m = parse_migration(PATH, text.encode())

    assert [s.sql for s in m.statements] == forward
    assert not any(p.code == "rollback-uncommented" for p in m.all_problems)


@given(bodies(), st.integers(min_value=0, max_value=6), st.sampled_from(("-- -- ", "--   -- ")))
@settings(max_examples=200, deadline=None)
def test_a_doubly_commented_line_anywhere_in_a_section_is_reported_at_its_line(
    body: Body, at: int, prefix: str
) -> None:
    lines = list(body.lines)
    at = min(at, len(lines))
    lines.insert(at, prefix + "(repeat for each table)")
    text = "CREATE TABLE t (id int);\n-- ROLLBACK\n" + "\n".join(lines) + "\n"

    m = parse_migration(PATH, text.encode())

    assert ("rollback-double-comment", at + 3) in [(p.code, p.line) for p in m.all_problems]
