"""Generated SQL files for the property tests of the formats whose down part is a file of its
own (golang-migrate, directory, Flyway): statements from a small vocabulary, laid out with random
blank lines, comments, spacing and line ends, and the exact statements and lines expected back."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).map(lambda s: "t_" + s)

TEMPLATES = (
    "CREATE TABLE {0} (id int PRIMARY KEY, note text)",
    "DROP TABLE IF EXISTS {0}",
    "ALTER TABLE {0}\n    ADD COLUMN {1} text",
    "CREATE INDEX CONCURRENTLY {1} ON {0} (id)",
    "INSERT INTO {0} (id, note) VALUES (1, '-- +goose Down')",
    # other tools' markers inside a $$ body and a string: they never split the file
    "CREATE FUNCTION {1}() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n-- +goose Down\n"
    "-- migrate:down\n    RETURN 1;\nEND;\n$$",
    "COMMENT ON TABLE {0} IS '\n-- Down Migration\n-- +migrate Down\nnot a marker'",
)
SEPARATORS = (";\n", ";\n\n", ";  \n", ";\n-- a note between statements\n", "; -- a remark\n")
LEADS = ("", "\n", "-- written by hand\n", "-- Purpose: test\n\n", "/* a block\n   comment */\n")


@dataclass(frozen=True)
class SqlFile:
    text: str
    """As written to disk (maybe with Windows line ends and a byte-order mark)."""
    statements: tuple[tuple[str, int], ...]
    """The statements expected back, ``(sql, line)``."""


@st.composite
def statement(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(TEMPLATES)).format(draw(names), draw(names))


@st.composite
def sql_files(draw: st.DrawFn, *, min_size: int = 0) -> SqlFile:
    """A file of 0 to 4 statements (``min_size`` at least) and where each one starts."""
    chosen = draw(st.lists(statement(), min_size=min_size, max_size=4))
    text = draw(st.sampled_from(LEADS))
    expected = []
    for sql in chosen:
        expected.append((sql, text.count("\n") + 1))
        text += sql + draw(st.sampled_from(SEPARATORS))
    drop_last_semicolon: bool = draw(st.booleans())
    if chosen and drop_last_semicolon:  # the last ; is optional, as PostgreSQL accepts
        text = text.rstrip().removesuffix(";") + draw(st.sampled_from(("", "\n", "\n\n")))
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    if draw(st.booleans()):
        text = "\ufeff" + text
    return SqlFile(text, tuple(expected))


def written(path: str, text: str) -> None:
    """Write ``text`` exactly (no newline translation)."""
    with open(path, "w", encoding="utf-8", newline="") as file:  # noqa: PTH123
        file.write(text)
