"""Transaction control in a migration section: the one wrapper backout accepts, and refusals.

backout runs each section (forward or rollback) in one transaction of its own, with its history
row and its audit row; a dry run runs it in a transaction that is always rolled back. A
``COMMIT`` sent inside it would end that transaction early: the change would be kept without its
history row, and a dry run would keep what it only meant to try. So:

- a section wholly wrapped in one ``BEGIN; ... COMMIT;`` (``BEGIN WORK``, ``BEGIN TRANSACTION``,
  ``START TRANSACTION``; ``COMMIT WORK``, ``END``; any case) runs as ONE transaction: the
  wrapper is recognised, shown, and never sent to the server;
- any other transaction control anywhere in a section (``COMMIT``, ``ROLLBACK``, ``SAVEPOINT``,
  ``RELEASE``, ``ROLLBACK TO``, ``COMMIT AND CHAIN``, ``PREPARE TRANSACTION``, ``SET
  TRANSACTION``, a second ``BEGIN``, a ``BEGIN`` with transaction modes...) is a
  ``transaction-control`` problem, which every command that runs SQL refuses before it runs
  anything;
- a wrapper around a statement that cannot run in a transaction (``CREATE INDEX
  CONCURRENTLY``) is a problem too: the section cannot be what the wrapper says.

Pure functions over parsed statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backout.errors import UsageError
from backout.migrations.statements import Flag, Problem, SqlSyntaxError, Statement, split

CODE = "transaction-control"
"""The problems' code, which is also the lint rule's id."""
_OPENS = frozenset({"BEGIN", "START TRANSACTION"})
_CLOSES = "COMMIT"


@dataclass(frozen=True)
class Wrapper:
    """The ``BEGIN; ... COMMIT;`` around a whole section: recognised, shown, never sent."""

    begin: Statement
    commit: Statement

    @property
    def lines(self) -> tuple[int, int]:
        """The lines of the ``BEGIN`` and of the ``COMMIT``."""
        return self.begin.line, self.commit.line

    def describe(self) -> str:
        """One sentence for ``show`` and the JSON: what backout does with the wrapper."""
        return (
            f"{_words(self.begin)} (line {self.begin.line}) and {_words(self.commit)} "
            f"(line {self.commit.line}) wrap the whole section: they are not sent; backout "
            "runs the section as one transaction of its own"
        )


@dataclass(frozen=True)
class Section:
    """A section's statements as backout runs them, the wrapper taken off, and the problems."""

    statements: tuple[Statement, ...]
    wrapper: Wrapper | None = None
    problems: tuple[Problem, ...] = ()


def unwrap(statements: Sequence[Statement]) -> Section:
    """Take off the one ``BEGIN ... COMMIT`` around the whole section; refuse any other control."""
    statements = tuple(statements)
    if not any(s.has(Flag.TRANSACTION_CONTROL) for s in statements):
        return Section(statements)
    wrapper = _wrapper(statements)
    if wrapper is None:
        return Section(statements, problems=tuple(map(_refusal, _controls(statements))))
    inner = statements[1:-1]
    problems = [_refusal(s) for s in _controls(inner)]
    problems += [_inside_wrapper(s, wrapper) for s in inner if s.has(Flag.NON_TRANSACTIONAL)]
    return Section(inner, wrapper, tuple(sorted(problems, key=lambda p: p.line)))


def refuse_transaction_control(statements: Sequence[Statement]) -> None:
    """A dry run's own guard, whatever it is given: raise :class:`UsageError` when a statement,
    parsed again from its text, is transaction control or holds more than one statement."""
    for statement in statements:
        try:
            pieces = split(statement.sql, first_line=statement.line)
        except SqlSyntaxError:
            continue  # the server rejects it too, inside the transaction
        if len(pieces) != 1 or pieces[0].has(Flag.TRANSACTION_CONTROL):
            raise UsageError(
                f"line {statement.line}: {_words(statement)} is or holds transaction control "
                "(or several statements): a dry run never runs it, as it could end the "
                "transaction that is always rolled back",
                hint="nothing was run; see `backout lint`",
            )


def _controls(statements: Sequence[Statement]) -> list[Statement]:
    return [s for s in statements if s.has(Flag.TRANSACTION_CONTROL)]


def _wrapper(statements: tuple[Statement, ...]) -> Wrapper | None:
    if len(statements) < 2:
        return None
    first, last = statements[0], statements[-1]
    if first.transaction_control in _OPENS and last.transaction_control == _CLOSES:
        return Wrapper(first, last)
    return None


def _refusal(statement: Statement) -> Problem:
    written, what = _words(statement), statement.transaction_control or "transaction control"
    named = written if written.upper() == what else f"{written} ({what})"
    return Problem(
        CODE,
        statement.line,
        f"{named} controls the transaction: backout runs each section as "
        "one transaction of its own (a dry run in one it always rolls back), which this would "
        "end, split or change; remove it (only one BEGIN; ... COMMIT; around the whole section "
        "is accepted, and is not sent)",
    )


def _inside_wrapper(statement: Statement, wrapper: Wrapper) -> Problem:
    return Problem(
        CODE,
        statement.line,
        f"{statement.non_transactional_reason} cannot run inside a transaction, but the "
        f"{_words(wrapper.begin)} at line {wrapper.begin.line} wraps it in one; remove the "
        f"{_words(wrapper.begin)} and {_words(wrapper.commit)} (backout runs such a statement "
        "on its own) and keep it in a migration of its own",
    )


def _words(statement: Statement) -> str:
    """The statement as written, on one line, shortened: ``BEGIN WORK``, ``COMMIT``."""
    words = " ".join(statement.sql.split())
    return words if len(words) <= 40 else words[:37] + "..."
