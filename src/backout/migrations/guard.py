"""The git form of "never modify applied migrations": a migration file the main branch holds
must stay byte for byte as it was committed. Pure: the committed and current bytes in,
findings out (:mod:`backout.git` reads the branch, :mod:`backout.project.guard` puts them
together).

A migration on the main branch may already be applied somewhere; editing it changes its
checksum (``status`` reports it modified) and leaves every database that ran the old text with
a schema no file describes. The fix is a new migration, or, for a change of mind before it was
applied anywhere, a revert of the edit.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import zip_longest
from pathlib import Path

from backout.migrations.lint import Finding, finding

RULE = "committed-migration-edited"


def edits(
    committed: Mapping[Path, bytes], current: Mapping[Path, bytes | None], base: str
) -> list[Finding]:
    """A finding for each committed file whose ``current`` bytes differ (``None``: deleted),
    at the first line that differs, in path order."""
    found = []
    for path in sorted(committed):
        now = current.get(path)
        if now == committed[path]:
            continue
        if now is None:
            message = (
                f"deleted or renamed, but {base} holds it: a committed migration may already be "
                f"applied; restore it (git checkout {base} -- <file>)"
            )
            found.append(finding(RULE, path, 1, message))
            continue
        message = (
            f"changed since it was committed on {base}: a committed migration may already be "
            "applied; undo the edit and write a new migration (backout new)"
        )
        found.append(finding(RULE, path, first_difference(committed[path], now), message))
    return found


def first_difference(before: bytes, after: bytes) -> int:
    """The first line (from 1) where ``after`` differs from ``before``."""
    pairs = zip_longest(before.splitlines(), after.splitlines())
    return next((n for n, (a, b) in enumerate(pairs, start=1) if a != b), 1)
