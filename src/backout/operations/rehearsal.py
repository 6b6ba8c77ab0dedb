"""Rehearse before production: the migrations a change concerns, verified on a scratch database.

``apply`` and ``rollback`` on an environment that requires approval call :func:`gate` before
they take the lock: the migrations concerned (with every migration before them, which they
build on) are applied, rolled back and applied again on a scratch database, and the change is
refused (exit 4) when the rehearsal of one of them fails, unless the operator skips it with a
reason; either way the result goes into the approval's audit row. ``emergency`` calls
:func:`rehearse_quietly`, which reports and never blocks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

from backout.config import Settings
from backout.database.connection import Target, connect
from backout.database.scratch import scratch_database
from backout.errors import BackoutError, RefusedError, UsageError
from backout.migrations.catalog import Entry, project_catalog
from backout.operations.approval import Operator, check_approval
from backout.operations.verify import FAILED, SKIPPED, Verdict, verify

SCRATCH_ENV = "BACKOUT_SCRATCH_DATABASE_URL"
"""A server to create scratch databases on, instead of starting the embedded PostgreSQL."""


def gate(
    settings: Settings,
    target: Target,
    operator: Operator,
    names: Sequence[str],
    skip_reason: str | None,
) -> Operator:
    """The operator, with the rehearsal's result to audit; raises when it failed."""
    environment = target.environment
    if environment is None or not environment.require_approval or not names:
        return operator
    check_approval(target, operator)
    if skip_reason is not None:
        if not skip_reason.strip():
            raise UsageError("--skip-rehearsal needs a reason: say why it is safe to skip")
        return replace(operator, rehearsal=f"skipped: {' '.join(skip_reason.split())}")
    try:
        verdicts = rehearse(settings, names)
    except UsageError as exc:  # no embedded server here and no scratch server named
        raise UsageError(
            f"cannot rehearse before changing {target.name}: {exc.message}",
            hint=f"install backout[embedded], set {SCRATCH_ENV} to a server for scratch "
            "databases, or pass --skip-rehearsal REASON",
        ) from None
    failed = [v for v in verdicts if v.migration in names and v.outcome in (FAILED, SKIPPED)]
    if failed:
        first = failed[0]
        problem = (first.problems() or ["it failed"])[0]
        raise RefusedError(
            f"the rehearsal of {first.migration} on a scratch database failed: {problem}; "
            f"nothing was changed on {target.name}",
            hint="fix it and check with `backout verify`, or pass --skip-rehearsal REASON",
        )
    return replace(operator, rehearsal="passed")


def rehearse(settings: Settings, names: Sequence[str]) -> list[Verdict]:
    """Verify the migrations ``names`` (and those before them) on a scratch database."""
    catalog = project_catalog(settings)
    wanted = [e for e in catalog.entries if e.name in names]
    # a file with no version is no migration (a Flyway repeatable...): nothing builds on it
    entries = [e for e in _up_to(catalog.entries, wanted) if e.version is not None]
    with (
        scratch_database(os.environ.get(SCRATCH_ENV) or None) as url,
        connect(url, autocommit=True) as conn,
    ):
        return verify(settings, conn, entries).verdicts


def rehearse_quietly(settings: Settings, name: str) -> str:
    """One line saying whether ``name``'s rollback passes rehearsal; never raises."""
    try:
        verdicts = rehearse(settings, [name])
    except BackoutError as exc:
        return f"could not run: {exc}"
    except Exception as exc:  # the emergency must go on whatever happens here
        return f"could not run: {type(exc).__name__}: {exc}"
    verdict = next((v for v in verdicts if v.migration == name), None)
    if verdict is None:
        return "could not run: the migration is not in the catalog"
    if verdict.outcome == "ok":
        return "passed (applied, rolled back and applied again on a scratch database)"
    return f"{verdict.outcome}: " + "; ".join(verdict.problems() or ["no detail"])


def _up_to(everything: Sequence[Entry], named: Sequence[Entry]) -> list[Entry]:
    last: dict[object, int] = {}
    for entry in named:
        last[entry.folder] = max(last.get(entry.folder, -1), list(everything).index(entry))
    return [e for i, e in enumerate(everything) if e.folder in last and i <= last[e.folder]]
