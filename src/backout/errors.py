"""The exception tree and the exit codes.

Every failure backout can explain is a subclass of :class:`BackoutError`. Exceptions carry the
data of what went wrong (the file, the line, the migration) and a hint saying what to do next;
they never print. Exactly one place, :func:`backout.cli.entry.run`, turns them into a one-line
message on stderr and the exit code of their class.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    """The documented exit codes of every backout command."""

    OK = 0
    """The command did what was asked."""
    FAILED = 1
    """The operation failed (the database refused a statement, a file could not be written, ...)."""
    USAGE = 2
    """Usage or bad input: bad flags, bad configuration, unknown or ambiguous migration,
    malformed migration file."""
    PROBLEMS = 3
    """A check found problems (lint errors, pending or modified migrations, overdue reviews)."""
    REFUSED = 4
    """Refused by a safety rule; nothing was changed."""
    LOCKED = 5
    """Could not get a lock in time; nothing was changed."""
    INTERRUPTED = 130
    """Interrupted (Ctrl-C)."""


EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 the operation failed; 2 usage or bad input; "
    "3 a check found problems; 4 refused by a safety rule; 5 could not get a lock in time; "
    "130 interrupted."
)


class BackoutError(Exception):
    """The root of every error backout reports to a person.

    ``message`` says what happened and where; ``hint`` says what to do next. ``evidence`` is
    optional supporting text (a diff) shown before the one-line message.
    """

    exit_code: ExitCode = ExitCode.FAILED
    evidence: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message


class UsageError(BackoutError):
    """Bad input from the person or their files (exit 2)."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """The configuration file or an environment variable holds something backout cannot use."""

    def __init__(self, message: str, *, path: Path | None = None, hint: str | None = None) -> None:
        where = f"{path}: " if path else ""
        super().__init__(f"{where}{message}", hint=hint)
        self.path = path


class UnknownMigrationError(UsageError):
    """A reference that matches no migration file in the configured folders."""

    def __init__(self, reference: str, *, suggestions: Sequence[str] = (), where: str = "") -> None:
        hint = (
            f"did you mean {' or '.join(suggestions)}?"
            if suggestions
            else "run `backout lint` to list the migrations backout can see"
        )
        super().__init__(f"unknown migration {reference!r}{where}", hint=hint)
        self.reference = reference
        self.suggestions = tuple(suggestions)


class AmbiguousMigrationError(UsageError):
    """A reference (usually a bare version) that matches migrations in more than one folder."""

    def __init__(self, reference: str, candidates: Sequence[str]) -> None:
        super().__init__(
            f"migration {reference!r} is ambiguous: it matches {', '.join(candidates)}",
            hint="name it by path, e.g. `" + candidates[0] + "`",
        )
        self.reference = reference
        self.candidates = tuple(candidates)


class MalformedMigrationError(UsageError):
    """A migration file backout cannot read at all (not UTF-8, not a file)."""

    def __init__(self, path: Path, message: str, *, line: int | None = None) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.reason = message
        self.path = path
        self.line = line


class TemplateError(UsageError):
    """A template is missing or uses a variable backout does not provide."""


class RefusedError(BackoutError):
    """A safety rule refused the operation; nothing was changed (exit 4)."""

    exit_code = ExitCode.REFUSED


class FileExistsRefusal(RefusedError):
    """backout will not overwrite a file that already exists."""

    def __init__(self, path: Path, *, hint: str | None = None) -> None:
        super().__init__(f"{path} already exists", hint=hint or "choose another description")
        self.path = path


class LockTimeoutError(BackoutError):
    """Another backout session holds the lock (exit 5)."""

    exit_code = ExitCode.LOCKED
