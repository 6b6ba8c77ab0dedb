"""Put an incident's backup back: ``backout restore <incident>``.

After the forward migration (or its fix) is applied again, :func:`restore` checks the backup's
files against their SHA-256 sums, orders its items parents before children from the foreign
keys of the live catalog, and, under the migration lock and in one transaction, loads each whole
table back with ``COPY ... FROM STDIN (FORMAT binary)`` (refusing a table that holds rows) and
each column backup through a temporary table and an ``UPDATE ... FROM`` matched on the primary
key, resets the sequences, and writes an audit row. :func:`prepare` does the checks and the
ordering alone: the dry run. Nothing here prints.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from backout.config import Settings
from backout.database.connection import Target, connect, first_line
from backout.database.history import AuditEvent, ensure_audit, write_audit
from backout.database.lock import guard_transaction, migration_lock
from backout.errors import BackoutError, ExitCode, RefusedError, UsageError
from backout.operations.backup.manifest import MANIFEST, ManifestItem, read_manifest
from backout.operations.backup.restore import parents_first
from backout.postmortems.collection import find, load, rewrite
from backout.postmortems.front_matter import to_front_matter

BLOCK = 1 << 20
"""Bytes read from a backup file and sent at a time."""


class RestoreFailedError(BackoutError):
    """The restore failed on the server; its transaction was rolled back (exit 1)."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class Step:
    """One backup item, where it goes, and (once restored) how many rows it brought back."""

    item: ManifestItem
    relation: tuple[str, str]
    """The live table's schema and name, as the catalog spells them."""
    rows_now: int
    """The rows the table holds before the restore."""
    restored: int | None = None


@dataclass(frozen=True)
class Restore:
    """What ``restore`` did, or in a dry run would do, in order."""

    incident: str
    folder: Path
    steps: tuple[Step, ...]
    audit_event: int | None = None
    postmortem: Path | None = None
    """The postmortem the timeline entry went to; None when it is not in this working tree."""


def backup_folder(settings: Settings, incident: str) -> Path:
    """The incident's backup folder, or a usage error naming where it was looked for."""
    folder = settings.backups_folder / incident.strip().upper()
    if not (folder / MANIFEST).is_file():
        fleet = folder.is_dir() and any((f / MANIFEST).is_file() for f in folder.iterdir())
        raise UsageError(
            f"no finished backup for {incident} in {settings.relative(folder)}",
            hint="it is a fleet incident, one backup per target: give the fleet "
            "(--targets FILE or --fleet NAME) and --target NAME or --all"
            if fleet
            else "give the incident id the emergency printed (INC-YYYYMMDD-NN); "
            "a folder without manifest.json is an unfinished backup",
        )
    return folder


def check_sums(folder: Path, items: Sequence[ManifestItem]) -> None:
    """Refuse (exit 4) when a file is missing or its SHA-256 is not the manifest's."""
    for item in items:
        path = folder / item.file
        digest = hashlib.sha256()
        try:
            with path.open("rb") as data:
                while block := data.read(BLOCK):
                    digest.update(block)
        except OSError as exc:
            raise RefusedError(
                f"{path}: cannot be read ({exc.strerror or exc}); nothing was restored",
                hint="put the backup file back as it was written",
            ) from None
        if digest.hexdigest() != item.sha256:
            raise RefusedError(
                f"{path}: its SHA-256 does not match the manifest; nothing was restored",
                hint="the file was changed or damaged since the backup: restore it from a copy",
            )


def prepare(conn: psycopg.Connection[Any], folder: Path) -> tuple[Step, ...]:
    """The items checked and in restore order, parents first; a refusal naming the table when
    one is missing or lacks a column, or a whole table already holds rows."""
    manifest = read_manifest(folder)
    check_sums(folder, manifest.items)
    steps = [_step(conn, item) for item in manifest.items]
    return parents_first(steps, _parents(conn, [s.item.table for s in steps]))


def _step(conn: psycopg.Connection[Any], item: ManifestItem) -> Step:
    row = conn.execute(
        "SELECT c.oid, n.nspname, c.relname FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
        (item.table,),
    ).fetchone()
    if row is None:
        raise RefusedError(
            f"the table {item.table} does not exist; nothing was restored",
            hint="apply the forward migration (or its fix-forward) again first",
        )
    present = {
        str(name)
        for (name,) in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0"
            " AND NOT attisdropped",
            (row[0],),
        ).fetchall()
    }
    missing = [c for c in item.columns if c not in present]
    if missing:
        raise RefusedError(
            f"the table {item.table} has no column {', '.join(missing)}; nothing was restored",
            hint="apply the forward migration (or its fix-forward) again first",
        )
    relation = (str(row[1]), str(row[2]))
    counted = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*relation)))
    rows = int((counted.fetchone() or (0,))[0])
    if not item.key and rows:
        raise RefusedError(
            f"the table {item.table} is not empty ({rows} rows); nothing was restored",
            hint="a whole-table backup is restored into an empty table only: empty it (or "
            "move its rows aside) first",
        )
    return Step(item, relation, rows)


_FOREIGN_KEYS = """
SELECT child.n, parent.n
FROM unnest(%(tables)s::text[]) WITH ORDINALITY AS child(name, n)
JOIN unnest(%(tables)s::text[]) WITH ORDINALITY AS parent(name, n) ON parent.n <> child.n
JOIN pg_constraint con ON con.contype = 'f'
  AND con.conrelid = to_regclass(child.name) AND con.confrelid = to_regclass(parent.name)
"""


def _parents(conn: psycopg.Connection[Any], tables: list[str]) -> dict[int, set[int]]:
    """Each table's index to the indexes of the tables it references, from the live catalog."""
    parents: dict[int, set[int]] = {}
    for child, parent in conn.execute(_FOREIGN_KEYS, {"tables": tables}).fetchall():
        parents.setdefault(int(child) - 1, set()).add(int(parent) - 1)
    return parents


def restore(
    settings: Settings,
    target: Target,
    incident: str,
    *,
    operator: str,
    lock_wait: float,
    now: Callable[[], datetime],
    folder: Path | None = None,
) -> Restore:
    """Put the incident's backup back in one transaction under the migration lock, with its
    audit row; then the timeline entry in the postmortem, when it is in this working tree.

    ``folder``: the backup to put back, for a fleet incident's target (one folder per target,
    :mod:`backout.operations.fleet.restore`); else the incident's own folder."""
    folder = folder or backup_folder(settings, incident)
    name = incident.strip().upper()
    with connect(target.url, autocommit=True) as conn, migration_lock(conn, wait=lock_wait):
        try:
            with conn.transaction():
                guard_transaction(conn, f"the restore of {name}")
                steps = tuple(_load(conn, folder, s) for s in prepare(conn, folder))
                audit = _audit(conn, settings, target, name, operator, steps)
        except psycopg.Error as exc:
            detail = exc.diag.message_detail
            raise RestoreFailedError(
                f"the restore of {name} failed: {first_line(exc, target.url)}"
                f"{f' ({detail})' if detail else ''}; "
                "its transaction was rolled back, nothing was restored",
                hint="fix what the error names, then run the same command again",
            ) from None
    postmortem = _note(settings, name, now(), steps, target.label)
    return Restore(name, folder, steps, audit, postmortem)


def dry_run(
    settings: Settings, target: Target, incident: str, folder: Path | None = None
) -> Restore:
    """What :func:`restore` would do, in order, with the same checks; nothing is changed."""
    folder = folder or backup_folder(settings, incident)
    with connect(target.url, autocommit=True) as conn, conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        steps = prepare(conn, folder)
    return Restore(incident.strip().upper(), folder, steps)


def _load(conn: psycopg.Connection[Any], folder: Path, step: Step) -> Step:
    """Load one item back: COPY into the (empty) table, or through a temporary table and an
    UPDATE matched on the primary key; the count of rows it brought back."""
    item, table = step.item, sql.Identifier(*step.relation)
    columns = sql.SQL(", ").join(map(sql.Identifier, item.columns))
    if item.key:
        scratch = sql.Identifier(f"backout_restore_{item.file.split('-', 1)[0]}")
        conn.execute(
            sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                scratch, columns, table
            )
        )
        _copy_in(conn, sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(scratch), folder, item)
        updated = conn.execute(_update(table, scratch, item))
        return Step(item, step.relation, step.rows_now, updated.rowcount)
    copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(table, columns)
    copied = _copy_in(conn, copy, folder, item)
    for column in _sequences(conn, step):
        conn.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence(%s, %s), coalesce(max({}), 1)) FROM {}"
            ).format(sql.Identifier(column), table),
            (table.as_string(conn), column),
        )
    return Step(item, step.relation, step.rows_now, copied)


def _copy_in(
    conn: psycopg.Connection[Any], copy: sql.Composed, folder: Path, item: ManifestItem
) -> int:
    with conn.cursor() as cur:
        with cur.copy(copy) as sink, (folder / item.file).open("rb") as data:
            while block := data.read(BLOCK):
                sink.write(block)
        return cur.rowcount


def _update(table: sql.Identifier, scratch: sql.Identifier, item: ManifestItem) -> sql.Composed:
    changed = [c for c in item.columns if c not in item.key]
    sets = sql.SQL(", ").join(
        sql.SQL("{} = b.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in changed
    )
    match = sql.SQL(" AND ").join(
        sql.SQL("t.{} = b.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in item.key
    )
    return sql.SQL("UPDATE {} AS t SET {} FROM {} AS b WHERE {}").format(
        table, sets, scratch, match
    )


def _sequences(conn: psycopg.Connection[Any], step: Step) -> list[str]:
    """The restored columns a sequence feeds (serial, identity), in column order."""
    name = sql.Identifier(*step.relation).as_string(conn)
    rows = conn.execute(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0"
        " AND NOT a.attisdropped AND pg_get_serial_sequence(%s, a.attname) IS NOT NULL"
        " ORDER BY a.attnum",
        (name, name),
    ).fetchall()
    return [str(c) for (c,) in rows if c in step.item.columns]


def _audit(
    conn: psycopg.Connection[Any],
    settings: Settings,
    target: Target,
    incident: str,
    operator: str,
    steps: Sequence[Step],
) -> int:
    ensure_audit(conn, settings.audit_table)
    event = AuditEvent(
        action="restore",
        outcome="success",
        environment=target.name,
        operator=operator,
        reason=f"restore the backup of {incident}",
        details={
            "incident": incident,
            "items": [
                {"table": s.item.table, "file": s.item.file, "rows": s.restored} for s in steps
            ],
        },
    )
    return write_audit(conn, settings.audit_table, event)


def _note(
    settings: Settings, incident: str, at: datetime, steps: Sequence[Step], target: str | None
) -> Path | None:
    """The timeline entry, front matter only (the body stays as written), naming the fleet's
    ``target`` when there is one; None when the postmortem is not in this working tree (it may
    be on the incident's branch)."""
    try:
        record = find(load(settings.postmortems), incident)
    except UsageError:
        return None
    done = ", ".join(f"{s.item.table} ({s.restored} rows)" for s in steps)
    on = f" on {target}" if target else ""
    entry = to_front_matter(record.pm.with_entry(at, f"backup restored{on}: {done}"))["timeline"]
    try:
        rewrite(record, {**record.front, "timeline": entry})
    except OSError:  # the rows are back and audited: the entry is the one thing left to add
        return None
    return record.path
