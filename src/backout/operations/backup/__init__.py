"""Back up what a rollback destroys, before it runs (the strategy: no data loss without backup).

:func:`plan_backup` is the composition: :func:`~.catalog.read_catalog` reads what the
statements' data losses name from the catalog, and the pure :func:`~.planning.plan` applies the
rules (:mod:`.planning`). :func:`~.writer.write_backup` copies the plan out in one snapshot
(:mod:`.writer`); :mod:`.manifest` is the backup's record of itself, :mod:`.restore` how it is
put back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from backout.database.waits import Waits
from backout.migrations.statements import Statement
from backout.operations.backup.catalog import read_catalog
from backout.operations.backup.manifest import BackupError, Manifest, ManifestItem, read_manifest
from backout.operations.backup.planning import BackupItem, BackupPlan, plan, quoted
from backout.operations.backup.restore import restore_guide
from backout.operations.backup.stream import Progress
from backout.operations.backup.writer import write_backup

__all__ = [
    "BackupError",
    "BackupItem",
    "BackupPlan",
    "Manifest",
    "ManifestItem",
    "Progress",
    "plan",
    "plan_backup",
    "quoted",
    "read_catalog",
    "read_manifest",
    "restore_guide",
    "write_backup",
]


def plan_backup(
    conn: psycopg.Connection[Any], statements: Sequence[Statement], waits: Waits | None = None
) -> BackupPlan:
    """What to back up before ``statements`` run; read-only catalog queries, whose lock waits
    are bounded and retried (``waits``, else the defaults)."""
    losses = [loss for statement in statements for loss in statement.data_loss]
    return plan(losses, read_catalog(conn, losses, waits or Waits()))
