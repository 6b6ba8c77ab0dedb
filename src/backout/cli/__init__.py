"""The command line: a thin typer layer that parses, calls one core function and renders.

:func:`main` is the console entry point. A bare ``backout --version`` is answered here, before
typer is imported; everything else goes to :func:`backout.cli.entry.run`, the one place where
errors become a message on stderr and an exit code. The commands are imported when they run
(see :mod:`backout.cli.commands`), not here; ``app`` is imported on first use.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from backout import __version__

if TYPE_CHECKING:
    from typer import Typer


def main(argv: Sequence[str] | None = None) -> int:
    """Run backout with ``argv`` (default: the process arguments) and return its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:  # what `backout --version` prints, without starting typer
        sys.stdout.write(f"backout {__version__}\n")
        sys.stdout.flush()
        return 0
    from backout.cli.entry import run

    return run(args)


def __getattr__(name: str) -> Typer:
    """``backout.cli.app``: the typer application, imported when first asked for."""
    if name == "app":
        from backout.cli.application import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main"]
