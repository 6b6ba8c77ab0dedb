"""``backout restore <incident>`` for a fleet incident: one target's backup, or every target's.

A fleet incident keeps its backups under ``<backups>/<INCIDENT>/<target>/``, one folder per
target, each a one-database backup (``manifest.json``, the COPY files, ``SHA256SUMS``,
``RESTORE.md``). :func:`target_backups` finds them; :func:`chosen` pairs them with the fleet's
targets (their URLs come from ``--targets``/``--fleet``, never from the backup); and
:func:`restore_all` puts them back target by target with :func:`backout.operations.restore.restore`
(each target in its own transaction, under its own lock, with its own audit row).

A target that fails does not stop the others: each restore is independent and all or nothing on
its own database, and every target left without its rows is one more incident. The failure is
kept with its target, and the caller says which failed (exit 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from backout.config import Settings
from backout.database.connection import Target
from backout.errors import BackoutError, UsageError
from backout.fleets.targets import Fleet, address
from backout.operations import restore as one
from backout.operations.backup.manifest import MANIFEST


@dataclass(frozen=True)
class TargetRestore:
    """One target's restore (or dry run), or why it failed."""

    target: str
    address: str
    folder: Path
    restored: one.Restore | None = None
    error: BackoutError | None = None
    """The failure, with its message (redacted), hint and exit code."""


@dataclass(frozen=True)
class FleetRestore:
    incident: str
    folder: Path
    targets: tuple[TargetRestore, ...]
    left_to_other_shards: tuple[str, ...] = ()
    """With ``--shard``: backed-up targets outside this slice, restored by the other jobs."""

    @property
    def failed(self) -> tuple[TargetRestore, ...]:
        return tuple(t for t in self.targets if t.error is not None)


def incident_folder(settings: Settings, incident: str) -> Path:
    return settings.backups_folder / incident.strip().upper()


def target_backups(settings: Settings, incident: str) -> dict[str, Path]:
    """Each backed-up target's finished backup folder, by target name (sorted); a usage error
    when the incident has none, or has a one-database backup."""
    folder = incident_folder(settings, incident)
    where = settings.relative(folder)
    if (folder / MANIFEST).is_file():
        raise UsageError(
            f"{incident} is a one-database incident: {where} holds one backup, not one per target",
            hint="restore it without a fleet: --database-url URL or --env NAME",
        )
    found = (
        sorted(f for f in folder.iterdir() if (f / MANIFEST).is_file()) if folder.is_dir() else []
    )
    if not found:
        raise UsageError(
            f"no finished backup of any target for {incident} in {where}",
            hint="give the incident id the fleet's emergency printed (INC-YYYYMMDD-NN); "
            "a target's folder without manifest.json is an unfinished backup",
        )
    return {f.name: f for f in found}


def chosen(
    fleet: Fleet, backups: dict[str, Path], target: str | None
) -> tuple[list[tuple[Target, Path]], tuple[str, ...]]:
    """The targets to restore with their backups: ``target`` alone, or (None) every target
    of the fleet that has a backup; and, with ``--shard``, the backed-up targets left to the
    other slices. A backup of a target the (whole) fleet does not list is refused: its rows
    would stay out of its database unnoticed."""
    by_name = {t.name: t for t in fleet.targets}
    if target is not None:
        if target not in by_name:
            raise UsageError(
                f"target {target!r} is not in fleet {fleet.name}",
                hint=f"its targets: {', '.join(fleet.names)}",
            )
        if target not in backups:
            raise UsageError(
                f"the incident has no backup of {target}",
                hint=f"backed-up targets: {', '.join(backups)}",
            )
        return [(by_name[target], backups[target])], ()
    strangers = tuple(name for name in backups if name not in by_name)
    if strangers and fleet.shard is None:
        raise UsageError(
            f"the incident has backups of {', '.join(strangers)}, which fleet {fleet.name} "
            "does not list; nothing was restored",
            hint="give the targets file or fleet the incident ran on",
        )
    picked = [(t, backups[t.name]) for t in fleet.targets if t.name in backups]
    return picked, strangers


def restore_all(
    settings: Settings,
    incident: str,
    picked: Sequence[tuple[Target, Path]],
    *,
    operator: str,
    lock_wait: float,
    now: Callable[[], datetime],
    dry_run: bool = False,
) -> tuple[TargetRestore, ...]:
    """Restore (or with ``dry_run`` check and order) each target's backup in turn; a failure
    is kept with its target and the next target is restored all the same."""
    done = []
    for target, folder in picked:
        where = address(target.url)
        try:
            result = (
                one.dry_run(settings, target, incident, folder)
                if dry_run
                else one.restore(
                    settings,
                    target,
                    incident,
                    operator=operator,
                    lock_wait=lock_wait,
                    now=now,
                    folder=folder,
                )
            )
        except BackoutError as exc:
            done.append(TargetRestore(target.name, where, folder, error=exc))
            continue
        done.append(TargetRestore(target.name, where, folder, restored=result))
    return tuple(done)


def restore_fleet(
    settings: Settings,
    fleet: Fleet,
    incident: str,
    *,
    target: str | None,
    operator: str,
    lock_wait: float,
    now: Callable[[], datetime],
    dry_run: bool = False,
) -> FleetRestore:
    """Restore ``target``'s backup of the fleet incident, or (None) every backed-up target's."""
    picked, left = chosen(fleet, target_backups(settings, incident), target)
    done = restore_all(
        settings,
        incident,
        picked,
        operator=operator,
        lock_wait=lock_wait,
        now=now,
        dry_run=dry_run,
    )
    return FleetRestore(incident.strip().upper(), incident_folder(settings, incident), done, left)
