"""The six sample migrations, as the tests use them: a private copy of exactly those files, so
that a file someone adds to the checkout's ``migrations/`` (``backout new "add widgets"`` run in
the repository root) changes no test."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from backout.cli.demo.sandbox import SAMPLE_FILES, sample_migrations


def _private_copy() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="backout-samples-")) / "migrations"
    folder.mkdir()
    for name in SAMPLE_FILES:
        shutil.copy(sample_migrations() / name, folder / name)
    atexit.register(shutil.rmtree, folder.parent, ignore_errors=True)
    return folder


SAMPLES = _private_copy()
