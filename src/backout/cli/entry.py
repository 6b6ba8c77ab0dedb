"""Running a command: :func:`run` is the one place where errors become a message on stderr and
an exit code. :func:`backout.cli.main` calls it for everything but a bare ``--version``.
"""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Sequence

import typer

from backout.cli.application import app
from backout.cli.metavars import tidy
from backout.errors import BackoutError, ExitCode, UsageError
from backout.redaction import redact

DEBUG_ENV = "BACKOUT_DEBUG"

# typer raises click's exceptions, from click itself or from the copy of click it ships: find the
# classes through a public typer name so either works.
_CLICK_ERRORS = {c.__name__: c for c in typer.BadParameter.__mro__}
ClickException: type[Exception] = _CLICK_ERRORS["ClickException"]
ClickUsageError: type[Exception] = _CLICK_ERRORS["UsageError"]


def run(args: Sequence[str]) -> int:
    """Run backout with ``args`` and return its exit code."""
    command = tidy(typer.main.get_command(app))
    try:
        result = command.main(args=list(args), prog_name="backout", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        result = ExitCode.INTERRUPTED
    except ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `backout` alone: the help is the answer
            exc.show()  # type: ignore[attr-defined]
            return ExitCode.USAGE
        return _report(_one_line(exc))
    except BackoutError as exc:
        return _report(exc)
    except Exception as exc:
        explained = _explained(exc)
        if explained is not None:
            return _report(explained)
        if os.environ.get(DEBUG_ENV):  # a bug: say so in one line unless asked for the traceback
            traceback.print_exc()
        else:
            typer.echo(
                redact(
                    f"backout: internal error: {type(exc).__name__}: {_first_line(exc)} "
                    f"(set {DEBUG_ENV}=1 to see the traceback, and please report it)"
                ),
                err=True,
            )
        return ExitCode.FAILED
    if result == ExitCode.INTERRUPTED:  # typer turns Ctrl-C into exit 130 and says nothing
        typer.echo("backout: interrupted; nothing more was done", err=True)
    return int(result) if isinstance(result, int) else ExitCode.OK


def _report(exc: BackoutError) -> int:
    if exc.evidence:
        typer.echo(redact(exc.evidence.rstrip("\n")), err=True)
    typer.echo(redact(f"backout: error: {exc}"), err=True)
    return exc.exit_code


def _one_line(exc: Exception) -> BackoutError:
    """typer's own error (a missing option, an unknown one, a bad choice) in backout's form:
    one line, what to read next, the usage exit code. The message may quote an argument (a URL
    put out of place): :func:`_report` redacts it."""
    message = exc.format_message()  # type: ignore[attr-defined]
    message = " ".join(message.split()).rstrip(".")
    message = re.sub(
        r"\. ([A-Z])", lambda m: f"; {m[1].lower()}", message[:1].lower() + message[1:]
    )
    if not isinstance(exc, ClickUsageError):
        return BackoutError(message)
    context = getattr(exc, "ctx", None)
    command = context.command_path if context is not None else "backout"
    return UsageError(message, hint=f"see {command} --help")


def _first_line(exc: BaseException) -> str:
    """One line: a message never runs onto the next (libpq adds ``LINE 2: ...`` and hints)."""
    return " ".join(str(exc).split("\n", 1)[0].split()) or type(exc).__name__


_FILE_HINTS = {
    FileExistsError: "a file is where backout needs a folder: move it, or point the setting "
    "at a folder",
    NotADirectoryError: "part of that path is a file, not a folder: move it, or point the "
    "setting at a folder",
    PermissionError: "backout may not write there: make it writable for this user, or point "
    "the setting at a folder it can write to",
}


def _explained(exc: Exception) -> BackoutError | None:
    """A file system or database error no core function explained, as a :class:`BackoutError`
    naming the path or the database object; ``None`` for anything else (a bug)."""
    if isinstance(exc, OSError) and exc.strerror:
        if exc.filename is None:  # a write to an open file: no space left, an I/O error
            return BackoutError(f"a file operation failed: {exc.strerror}")
        hint = _FILE_HINTS.get(type(exc), "check that path")
        return BackoutError(f"cannot use {exc.filename}: {exc.strerror}", hint=hint)
    if type(exc).__module__.split(".")[0] == "psycopg":
        import psycopg

        from backout.database.connection import translate

        if isinstance(exc, psycopg.Error):
            return translate(exc)
    return None
