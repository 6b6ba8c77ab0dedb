"""The command line: a thin typer layer that parses, calls one core function and renders.

:func:`main` is the one place where errors become a message on stderr and an exit code. The
commands are imported when they run (see :mod:`backout.cli.commands`), not here.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence

import typer

from backout.cli.app import app
from backout.errors import BackoutError, ExitCode

DEBUG_ENV = "BACKOUT_DEBUG"
LOCK_NOT_AVAILABLE = "55P03"
"""The SQLSTATE of a statement that waited ``lock_timeout`` for a table lock."""

# typer raises click's exceptions, from click itself or from the copy of click it ships: find the
# classes through a public typer name so either works.
_CLICK_ERRORS = {c.__name__: c for c in typer.BadParameter.__mro__}
ClickException: type[Exception] = _CLICK_ERRORS["ClickException"]
ClickUsageError: type[Exception] = _CLICK_ERRORS["UsageError"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run backout with ``argv`` (default: the process arguments) and return its exit code."""
    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = command.main(args=args, prog_name="backout", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("backout: interrupted; nothing more was done", err=True)
        return ExitCode.INTERRUPTED
    except ClickException as exc:
        exc.show()  # type: ignore[attr-defined]
        return ExitCode.USAGE if isinstance(exc, ClickUsageError) else ExitCode.FAILED
    except BackoutError as exc:
        if exc.evidence:
            typer.echo(exc.evidence.rstrip("\n"), err=True)
        typer.echo(f"backout: error: {exc}", err=True)
        return exc.exit_code
    except Exception as exc:  # a bug: say so in one line unless asked for the traceback
        if getattr(exc, "sqlstate", None) == LOCK_NOT_AVAILABLE:  # lock_timeout, not retried
            first = (str(exc).strip().splitlines() or ["lock timeout"])[0]
            typer.echo(
                f"backout: error: {first}: another session holds a lock on a table backout "
                "reads; try again when it finishes",
                err=True,
            )
            return ExitCode.LOCKED
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        else:
            typer.echo(
                f"backout: internal error: {type(exc).__name__}: {exc} "
                f"(set {DEBUG_ENV}=1 to see the traceback, and please report it)",
                err=True,
            )
        return ExitCode.FAILED
    return int(result) if isinstance(result, int) else ExitCode.OK


__all__ = ["app", "main"]
