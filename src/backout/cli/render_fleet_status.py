"""Rendering ``status`` across a fleet: one table of migrations by target, the targets that were
not read, and the drift in one line. Pure: data in, text out.

The table takes one of three forms, the first that fits: a column per target (when the columns
fit in :data:`WIDTH` characters); below :data:`COMPACT_AT` targets, each migration's states with
the targets in each; from :data:`COMPACT_AT` targets on, the majority state as a count and only
the targets that differ from it named.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backout.cli.render import Display
from backout.operations.fleet.status import FleetStatus, MigrationRow
from backout.operations.status import State

WIDTH = 120
COMPACT_AT = 50
NAMED = 10
"""Targets named in one list before "and N more"."""
NOT_RECORDED = "-"


def fleet_status_text(result: FleetStatus, display: Display, *, check: bool = False) -> str:
    out = [_heading(result)]
    if result.rows:
        out += _table(result, display)
    elif result.answered:
        out.append("No migrations.")
    if result.unread:
        out += ["", f"not read ({len(result.unread)}):"]
        out += [f"  {t.name} at {t.address}: {t.error}" for t in result.unread]
    out += ["", summary(result)]
    problems = result.with_problems()
    if check and problems:
        out.append(
            f"--check: a migration is pending, modified, missing, damaged or dirty on "
            f"{_listed(problems)}."
        )
    return "\n".join(out)


def _heading(result: FleetStatus) -> str:
    shard = f" (shard {result.shard[0]}/{result.shard[1]})" if result.shard else ""
    count = len(result.targets)
    return f"fleet {result.fleet}{shard}: {count} target{'s' if count != 1 else ''}"


def summary(result: FleetStatus) -> str:
    """The drift at a glance: every target agrees, or which differ and on what."""
    answered = len(result.answered)
    if not answered:
        return "No target could be read."
    unread = f"; {len(result.unread)} not read" if result.unread else ""
    differing = result.differing
    if not differing:
        who = "every" if answered != 1 else "the"
        return f"{_targets(answered)} agree on {who} migration{unread}."
    shown = [
        f"{name} ({_differences(rows, name)})" for name, rows in list(differing.items())[:NAMED]
    ]
    more = f" and {len(differing) - NAMED} more" if len(differing) > NAMED else ""
    return (
        f"{len(differing)} of {_targets(answered)} differ from the majority: "
        f"{', '.join(shown)}{more}{unread}."
    )


def _targets(count: int) -> str:
    return f"{count} target{'s' if count != 1 else ''}"


def _differences(rows: Sequence[MigrationRow], target: str) -> str:
    named = [f"{r.name} {_cell(r.states[target])}" for r in rows[:3]]
    return ", ".join(named) + (f", {len(rows) - 3} more" if len(rows) > 3 else "")


def _cell(state: State | None) -> str:
    return state.value if state is not None else NOT_RECORDED


def _table(result: FleetStatus, display: Display) -> list[str]:
    names = [t.name for t in result.answered]
    first = max(len(r.name) for r in result.rows)
    widths = [max(len(n), *(len(_cell(r.states[n])) for r in result.rows)) for n in names]
    columns = len(names) < COMPACT_AT and first + 4 + sum(w + 2 for w in widths) <= WIDTH
    header = " " * (first + 4) + "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))
    out = [header.rstrip()] if columns else []
    folder = None
    for row in result.rows:
        if row.folder != folder:
            folder = row.folder
            out.append(f"{display(folder)}/")
        if columns:
            cells = (_cell(row.states[n]).ljust(w) for n, w in zip(names, widths, strict=True))
            line = "  ".join(cells)
        else:
            line = _grouped(row, compact=len(names) >= COMPACT_AT)
        out.append(f"  {row.name.ljust(first)}  {line}".rstrip())
    return out


def _grouped(row: MigrationRow, *, compact: bool) -> str:
    """``applied on all 12``, or each state with its targets (``applied: a, b · pending: c``);
    ``compact``: the majority as a count (``applied on 48 · pending on 2: c, d``)."""
    groups: dict[State | None, list[str]] = {row.majority: []}
    for target, state in row.states.items():
        groups.setdefault(state, []).append(target)
    if len(groups) == 1:
        return f"{_cell(row.majority)} on all {len(row.states)}"
    parts = []
    for state, targets in groups.items():
        if compact and state == row.majority:
            parts.append(f"{_cell(state)} on {len(targets)}")
        elif compact:
            parts.append(f"{_cell(state)} on {len(targets)}: {_listed(targets)}")
        else:
            parts.append(f"{_cell(state)}: {_listed(targets)}")
    return " · ".join(parts)


def _listed(targets: Sequence[str]) -> str:
    more = f" and {len(targets) - NAMED} more" if len(targets) > NAMED else ""
    return ", ".join(targets[:NAMED]) + more


def fleet_status_json(result: FleetStatus, display: Display) -> dict[str, Any]:
    """``backout status --targets/--fleet --json``: stable keys, see the README."""
    differing = result.differing
    return {
        "fleet": result.fleet,
        "shard": f"{result.shard[0]}/{result.shard[1]}" if result.shard else None,
        "agree": result.agree,
        "targets": [
            {
                "name": t.name,
                "address": t.address,
                "read": t.states is not None,
                "error": t.error,
                "differs_on": [r.name for r in differing.get(t.name, ())],
            }
            for t in result.targets
        ],
        "migrations": [
            {
                "folder": display(r.folder),
                "version": r.version,
                "name": r.name,
                "majority": r.majority.value if r.majority is not None else None,
                "states": {t: s.value if s is not None else None for t, s in r.states.items()},
                "differing": list(r.differing),
            }
            for r in result.rows
        ],
    }
