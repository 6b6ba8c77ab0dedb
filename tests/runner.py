"""Run the backout command line in-process and capture what it prints, for exact assertions."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from backout.cli import main


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str


def run(*args: str) -> Result:
    """``backout ARGS...`` in the current working directory."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return Result(code, out.getvalue(), err.getvalue())
