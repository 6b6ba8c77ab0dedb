"""Waves: the order a fleet-wide change reaches its targets.

The first target is the canary, alone. The waves that follow are given as sizes, each ``N``
targets, ``P%`` of the fleet (rounded up, at least one) or ``rest``; targets still left after
the last size form one more wave. So the default ``10%, rest`` on 50 targets is 1, 5, then 44.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TypeVar

from backout.errors import UsageError

T = TypeVar("T")

_SIZE = re.compile(r"^(?:(?P<count>\d+)|(?P<percent>\d+(?:\.\d+)?)%|(?P<rest>rest))$")


def parse_waves(text: str) -> tuple[str, ...]:
    """``--waves "10%,rest"`` -> ``("10%", "rest")``, each size checked."""
    sizes = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    if not sizes:
        raise UsageError("--waves is empty", hint='e.g. --waves "10%,rest" or --waves 5,20,rest')
    for size in sizes:
        wave_size(size, 100)
    return sizes


def wave_size(size: str, total: int) -> int | None:
    """How many targets ``size`` takes out of a fleet of ``total`` (None: the rest)."""
    match = _SIZE.match(size.strip().lower())
    if match is None or match["count"] == "0":
        raise UsageError(
            f"wave size {size!r} is not a count, a percentage or 'rest'",
            hint='e.g. --waves "10%,rest" or --waves 5,20,rest',
        )
    if match["rest"]:
        return None
    if match["count"]:
        return int(match["count"])
    percent = float(match["percent"])
    if not 0 < percent <= 100:
        raise UsageError(f"wave size {size!r} is not between 0% and 100%")
    return max(1, math.ceil(total * percent / 100))


def plan_waves(targets: Sequence[T], sizes: Sequence[str]) -> tuple[tuple[T, ...], ...]:
    """``targets`` in waves: the canary (the first), then one wave per size, then what is left.
    Empty waves are dropped; every target is in exactly one wave, in the order given."""
    if not targets:
        return ()
    waves: list[tuple[T, ...]] = [(targets[0],)]
    start = 1
    for size in sizes:
        if start >= len(targets):
            break
        count = wave_size(size, len(targets))
        end = len(targets) if count is None else min(len(targets), start + count)
        waves.append(tuple(targets[start:end]))
        start = end
    if start < len(targets):
        waves.append(tuple(targets[start:]))
    return tuple(waves)
