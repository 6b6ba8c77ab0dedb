"""Migration versions: how they sort and compare, whatever the tool writes.

``004``, ``20260115093000``, Flyway's ``1.2`` or ``1_2``: each group of digits is a number, so
``007`` equals ``0007``, ``1.10`` comes after ``1.9`` and every tool's order is kept.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"\d+")


def version_key(version: str | None) -> tuple[int, ...]:
    """The sort and comparison key of ``version``; ``()`` (first) when there is none."""
    if version is None:
        return ()
    return tuple(int(group) for group in _DIGITS.findall(version))
