"""Back up what a rollback destroys, before it runs (the strategy: no data loss without backup).

:func:`plan_backup` reads the parsed rollback statements (their :class:`DataLoss`) and the
catalog: a dropped, truncated or deleted-from table is backed up whole; a dropped column or an
updated one is backed up with the table's primary key, so it can be put back with an
``UPDATE ... FROM``; ``TRUNCATE ... CASCADE`` reaches the tables that reference the truncated
ones; ``DROP SCHEMA ... CASCADE`` every table in the schema. :func:`write_backup` streams each
object out with ``COPY ... TO STDOUT (FORMAT binary)`` inside one repeatable-read, read-only
transaction, so the files are one consistent snapshot, and writes ``manifest.json`` (row
counts, sizes, SHA-256, restore commands), ``SHA256SUMS`` and ``RESTORE.md``. The manifest is
written last: a folder without one is an unfinished backup.

Identifiers only ever reach SQL through :mod:`psycopg.sql`; names are resolved with parameters.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import psycopg
from pglast.stream import maybe_double_quote_name
from psycopg import pq, sql

from backout.errors import BackoutError, ExitCode, RefusedError
from backout.migrations.statements import DataLoss, Statement

MANIFEST = "manifest.json"
CHECKSUMS = "SHA256SUMS"
RESTORE = "RESTORE.md"
FORMAT = "binary"
SMALL_TABLE = 64 << 20
"""Bytes under which a table never analysed is counted to estimate its rows."""
BLOCK = 1 << 20
"""Bytes written (and hashed) at a time."""
PROGRESS_STEP = 1 << 20
"""Bytes between two progress reports."""

Progress = Callable[["BackupItem", int], None]
"""Called while an item is written, with the bytes written so far."""


class BackupError(BackoutError):
    """The backup could not be taken; nothing was run."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class BackupItem:
    """One object to back up."""

    table: str
    """Schema-qualified and quoted as SQL needs it: ``public.jobs``, ``public."Weird Name"``."""
    columns: tuple[str, ...]
    """The columns copied, in order (never empty)."""
    key: tuple[str, ...]
    """The primary-key columns among them when only some columns are backed up, else ``()``."""
    reason: str
    file: str
    estimated_rows: int
    """From the planner's statistics, or counted for a small table never analysed; -1 when
    unknown."""
    sequences: tuple[str, ...] = ()
    """Columns fed by a sequence (serial, identity): restoring resets the sequence."""
    schema: str = field(default="", compare=False)
    name: str = field(default="", compare=False)
    kind: str = field(default="r", compare=False)
    """``pg_class.relkind``: ``r`` table, ``p`` partitioned, ``m`` materialized view, ``f``."""

    @property
    def whole(self) -> bool:
        return not self.key


@dataclass(frozen=True)
class BackupPlan:
    items: tuple[BackupItem, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ManifestItem:
    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    reason: str
    file: str
    rows: int
    bytes: int
    sha256: str
    restore: str


@dataclass(frozen=True)
class Manifest:
    created_at: datetime
    database: str
    server_version: str
    items: tuple[ManifestItem, ...]
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at.isoformat(),
            "database": self.database,
            "server_version": self.server_version,
            "format": FORMAT,
            "items": [
                {
                    "table": i.table,
                    "columns": list(i.columns),
                    "key": list(i.key),
                    "reason": i.reason,
                    "file": i.file,
                    "rows": i.rows,
                    "bytes": i.bytes,
                    "sha256": i.sha256,
                    "restore": i.restore,
                }
                for i in self.items
            ],
            "warnings": list(self.warnings),
        }


# -- planning -----------------------------------------------------------------------------------

_WHOLE = {
    "DROP TABLE",
    "DROP MATERIALIZED VIEW",
    "DROP FOREIGN TABLE",
    "TRUNCATE",
    "DELETE FROM",
    "MERGE INTO",
    "INSERT ... ON CONFLICT DO UPDATE",
}


@dataclass
class _Wanted:
    oid: int
    schema: str
    name: str
    kind: str
    columns: list[str]
    key: list[str]
    whole: bool
    reasons: list[str]
    estimated_rows: int


def plan_backup(conn: psycopg.Connection[Any], statements: Sequence[Statement]) -> BackupPlan:
    """What to back up before ``statements`` run; read-only catalog queries."""
    wanted: dict[int, _Wanted] = {}
    warnings: list[str] = []
    for statement in statements:
        for loss in statement.data_loss:
            _plan_loss(conn, loss, wanted, warnings)
    items = tuple(_item(conn, n, w) for n, w in enumerate(wanted.values(), start=1))
    return BackupPlan(items, tuple(dict.fromkeys(warnings)))


def _plan_loss(
    conn: psycopg.Connection[Any], loss: DataLoss, wanted: dict[int, _Wanted], warnings: list[str]
) -> None:
    action = loss.action
    if action == "DROP SCHEMA":
        rows = conn.execute(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition"
            " ORDER BY c.relname",
            (loss.target,),
        ).fetchall()
        if not rows:
            warnings.append(f"schema {loss.target} holds no table: nothing to back up")
        for (oid,) in rows:
            _want(conn, oid, None, wanted, loss.describe())
        return
    if action == "DROP DATABASE":
        warnings.append(f"DROP DATABASE {loss.target} cannot be backed up here: use pg_dump")
        return
    if action not in _WHOLE and action not in ("DROP COLUMN", "UPDATE"):
        warnings.append(f"{loss.describe()}: not backed up (backout does not know its data)")
        return
    oid = _resolve(conn, loss.target)
    if oid is None:
        warnings.append(f"{loss.target} does not exist here: nothing to back up for it")
        return
    if action == "DROP COLUMN":
        _want(conn, oid, [loss.column or ""], wanted, loss.describe())
    elif action == "UPDATE":
        _want(conn, oid, list(loss.columns), wanted, loss.describe())
    else:
        _want(conn, oid, None, wanted, loss.describe())
    if action == "DELETE FROM":
        warnings.append(
            f"DELETE FROM {loss.target}: its WHERE is not evaluated, the whole table is backed up"
        )
    if action == "TRUNCATE" and loss.cascade:
        for (ref,) in conn.execute(_REFERENCING, (oid,)).fetchall():
            _want(conn, ref, None, wanted, f"reached by TRUNCATE {loss.target} CASCADE")
    if action == "DROP TABLE" and loss.cascade:
        dependants = conn.execute(_DEPENDANT_VIEWS, (oid, oid)).fetchall()
        for view_oid, view, kind in dependants:
            if kind == "m":
                _want(conn, view_oid, None, wanted, f"dropped by DROP TABLE {loss.target} CASCADE")
            else:
                warnings.append(f"the view {view} is dropped by the CASCADE (it holds no data)")


_REFERENCING = """
WITH RECURSIVE reached(oid) AS (
  SELECT %s::oid
  UNION
  SELECT con.conrelid FROM pg_constraint con JOIN reached r ON con.confrelid = r.oid
  WHERE con.contype = 'f'
)
SELECT oid FROM reached OFFSET 1
"""

_DEPENDANT_VIEWS = """
SELECT DISTINCT v.oid, v.oid::regclass::text, v.relkind
FROM pg_depend d
JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
JOIN pg_class v ON v.oid = r.ev_class
WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = %s AND v.oid <> %s
"""


def _resolve(conn: psycopg.Connection[Any], target: str) -> int | None:
    """The table's oid: ``schema.name`` as parsed (already unquoted), else the search path."""
    schema, _, name = target.rpartition(".")
    if schema:
        row = conn.execute(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s",
            (schema, name),
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relname = %s AND n.nspname = ANY (current_schemas(false))"
            " AND c.relkind IN ('r', 'p', 'm', 'f')"
            " ORDER BY array_position(current_schemas(false), n.nspname) LIMIT 1",
            (name,),
        ).fetchone()
    return int(row[0]) if row else None


def _want(
    conn: psycopg.Connection[Any],
    oid: int,
    columns: list[str] | None,
    wanted: dict[int, _Wanted],
    reason: str,
) -> None:
    entry = wanted.get(oid)
    if entry is None:
        schema, name, kind, estimate, size = conn.execute(
            "SELECT n.nspname, c.relname, c.relkind, c.reltuples::bigint,"
            " pg_relation_size(c.oid) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s",
            (oid,),
        ).fetchone() or ("", "", "r", -1, 0)
        if estimate < 0 and size <= SMALL_TABLE:  # never analysed: counting is cheap here
            relation = sql.Identifier(schema, name)
            counted = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(relation)).fetchone()
            estimate = counted[0] if counted else -1
        key = [
            k
            for (k,) in conn.execute(
                "SELECT a.attname FROM pg_index i"
                " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true"
                " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
                " WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.n",
                (oid,),
            ).fetchall()
        ]
        entry = wanted[oid] = _Wanted(oid, schema, name, kind, [], key, False, [], int(estimate))
    entry.reasons.append(reason)
    if columns is None or not entry.key:
        entry.whole = True
    else:
        entry.columns += [c for c in columns if c and c not in entry.columns]


def quoted(name: str) -> str:
    """``name`` as an SQL identifier for people and psql scripts: quoted only when it must be."""
    return str(maybe_double_quote_name(name))


def _item(conn: psycopg.Connection[Any], number: int, w: _Wanted) -> BackupItem:
    everything = [
        name
        for (name,) in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0"
            " AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            (w.oid,),
        ).fetchall()
    ]
    columns: tuple[str, ...]
    key: tuple[str, ...]
    if w.whole:
        columns, key = tuple(everything), ()
    else:
        chosen = w.key + [c for c in w.columns if c not in w.key and c in everything]
        columns, key = tuple(chosen), tuple(w.key)
    table = f"{quoted(w.schema)}.{quoted(w.name)}"
    sequences = tuple(
        column
        for (column,) in conn.execute(
            "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s AND a.attnum > 0"
            " AND NOT a.attisdropped AND pg_get_serial_sequence(%s, a.attname) IS NOT NULL"
            " ORDER BY a.attnum",
            (w.oid, table),
        ).fetchall()
        if column in columns and w.whole
    )
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{w.schema}.{w.name}")[:80]
    return BackupItem(
        table=table,
        columns=columns,
        key=key,
        reason="; ".join(dict.fromkeys(w.reasons)),
        file=f"{number:02d}-{safe}{'' if w.whole else '.columns'}.copy",
        estimated_rows=w.estimated_rows,
        sequences=sequences,
        schema=w.schema,
        name=w.name,
        kind=w.kind,
    )


# -- writing ------------------------------------------------------------------------------------


def write_backup(
    conn: psycopg.Connection[Any],
    plan: BackupPlan,
    folder: Path,
    *,
    progress: Progress | None = None,
    now: datetime,
) -> Manifest:
    """Write ``plan``'s items to ``folder`` (which must not hold anything) in one snapshot."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise RefusedError(
            f"the backup folder {folder} is not empty; a backup is never overwritten",
            hint="move it away or choose another folder",
        )
    folder.mkdir(parents=True, exist_ok=True)
    items: list[ManifestItem] = []
    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            database, version = conn.execute(
                "SELECT current_database(), current_setting('server_version')"
            ).fetchone() or ("", "")
            for item in plan.items:
                items.append(_copy_out(conn, item, folder, progress))
    except psycopg.Error as exc:
        current = plan.items[len(items)].table if len(items) < len(plan.items) else "?"
        raise BackupError(
            f"the backup of {current} failed: {_first_line(exc)}; nothing was rolled back",
            hint=f"the partial backup is in {folder}",
        ) from None
    except OSError as exc:
        raise BackupError(
            f"could not write the backup in {folder}: {exc.strerror or exc}; "
            "nothing was rolled back",
            hint="free some disk space or configure another `backups` folder",
        ) from None
    manifest = Manifest(now, str(database), str(version), tuple(items), plan.warnings)
    (folder / CHECKSUMS).write_text("".join(f"{i.sha256}  {i.file}\n" for i in items))
    (folder / RESTORE).write_text(restore_guide(manifest), encoding="utf-8")
    (folder / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
    return manifest


def _copy_out(
    conn: psycopg.Connection[Any], item: BackupItem, folder: Path, progress: Progress | None
) -> ManifestItem:
    columns = sql.SQL(", ").join(map(sql.Identifier, item.columns))
    relation = sql.Identifier(item.schema, item.name)
    if item.kind == "r":
        query = sql.SQL("COPY {} ({}) TO STDOUT (FORMAT binary)").format(relation, columns)
    else:  # partitioned tables, materialized and foreign ones: COPY needs a query
        query = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)").format(
            columns, relation
        )
    with (folder / item.file).open("wb") as out:
        rows, size, digest = _stream(conn, query.as_bytes(conn), out, item, progress)
    if progress is not None:
        progress(item, size)
    return ManifestItem(
        table=item.table,
        columns=item.columns,
        key=item.key,
        reason=item.reason,
        file=item.file,
        rows=rows,
        bytes=size,
        sha256=digest,
        restore=_restore_commands(item),
    )


def _stream(
    conn: psycopg.Connection[Any],
    query: bytes,
    out: BinaryIO,
    item: BackupItem,
    progress: Progress | None,
) -> tuple[int, int, str]:
    """Run ``COPY ... TO STDOUT`` and write what it sends to ``out``: ``(rows, bytes, sha256)``.

    It reads with libpq's own loop (:mod:`psycopg.pq`) and writes in blocks of
    :data:`BLOCK` bytes: the server sends one message per row, and psycopg's ``Copy`` iterator
    costs about twice as much per row, which is most of the time on a large table. On any
    failure or interruption the COPY is cancelled and drained, so the connection's
    transaction can still be rolled back.
    """
    pgconn = conn.pgconn
    digest = hashlib.sha256()
    block = bytearray()
    size = reported = 0
    pgconn.send_query(query)
    try:
        started = pgconn.get_result()
        if started is None or started.status != pq.ExecStatus.COPY_OUT:
            raise _copy_error(started, pgconn)
        while True:
            length, data = pgconn.get_copy_data(0)
            if length < 0:
                break
            block += data
            if len(block) >= BLOCK:
                out.write(block)
                digest.update(block)
                size += len(block)
                block.clear()
                if progress is not None and size - reported >= PROGRESS_STEP:
                    progress(item, size)
                    reported = size
        finished = pgconn.get_result()
        if finished is None or finished.status != pq.ExecStatus.COMMAND_OK:
            raise _copy_error(finished, pgconn)
    except BaseException:
        _abandon(pgconn)
        raise
    while pgconn.get_result() is not None:
        pass
    out.write(block)
    digest.update(block)
    size += len(block)
    rows = int(finished.command_status.split()[-1]) if finished.command_status else 0
    return rows, size, digest.hexdigest()


def _copy_error(result: pq.abc.PGresult | None, pgconn: pq.abc.PGconn) -> psycopg.Error:
    message = result.error_message if result is not None else pgconn.error_message
    return psycopg.DatabaseError(message.decode("utf-8", "replace").strip() or "COPY failed")


def _abandon(pgconn: pq.abc.PGconn) -> None:
    """Cancel a COPY in flight and read what is left, so the connection is usable again."""
    cancel = pgconn.get_cancel()
    cancel.cancel()
    while pgconn.get_copy_data(0)[0] >= 0:
        pass
    while pgconn.get_result() is not None:
        pass


def _restore_commands(item: BackupItem) -> str:
    """The psql commands that put ``item`` back, run from the backup folder."""
    q = quoted
    columns = ", ".join(map(q, item.columns))
    if item.whole:
        return "\n".join(
            [f"\\copy {item.table} ({columns}) FROM '{item.file}' WITH (FORMAT binary)"]
            + [
                f"SELECT setval(pg_get_serial_sequence({_literal(item.table)}, {_literal(c)}),"
                f" coalesce(max({q(c)}), 1)) FROM {item.table};"
                for c in item.sequences
            ]
        )
    scratch = f"backout_restore_{item.file.split('-', 1)[0]}"
    changed = [c for c in item.columns if c not in item.key]
    sets = ", ".join(f"{q(c)} = b.{q(c)}" for c in changed)
    match = " AND ".join(f"t.{q(c)} = b.{q(c)}" for c in item.key)
    return (
        f"CREATE TEMP TABLE {scratch} AS SELECT {columns} FROM {item.table} WITH NO DATA;\n"
        f"\\copy {scratch} FROM '{item.file}' WITH (FORMAT binary)\n"
        f"UPDATE {item.table} AS t SET {sets} FROM {scratch} AS b WHERE {match};"
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def restore_guide(manifest: Manifest) -> str:
    """``RESTORE.md``: how to check the files and put the data back."""
    out = [
        "# Restoring this backup",
        "",
        f"Taken {manifest.created_at:%Y-%m-%d %H:%M:%S} UTC from database `{manifest.database}` "
        f"(PostgreSQL {manifest.server_version}), in one repeatable-read snapshot, just before "
        "the rollback ran. Rows written after that moment are not in it.",
        "",
        "1. Check the files: `sha256sum -c SHA256SUMS`.",
        "2. Re-apply the forward migration (or the fix-forward one), so the tables and columns "
        "exist again with the same types: the files are PostgreSQL's binary COPY format.",
        '3. From this folder, in one transaction: `psql -1 -v ON_ERROR_STOP=1 "$DATABASE_URL"` '
        "and run, for each object:",
        "",
    ]
    for item in manifest.items:
        out += [
            f"## {item.table}: {item.rows} rows, {item.bytes} bytes",
            "",
            f"Why: {item.reason}.",
            "",
            "```sql",
            item.restore,
            "```",
            "",
        ]
    if manifest.warnings:
        out += ["## Not in this backup", ""] + [f"- {w}" for w in manifest.warnings] + [""]
    return "\n".join(out)


def read_manifest(folder: Path) -> Manifest:
    """The manifest of the backup in ``folder``."""
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Manifest(
            created_at=datetime.fromisoformat(data["created_at"]),
            database=data["database"],
            server_version=data["server_version"],
            items=tuple(
                ManifestItem(
                    table=i["table"],
                    columns=tuple(i["columns"]),
                    key=tuple(i["key"]),
                    reason=i["reason"],
                    file=i["file"],
                    rows=int(i["rows"]),
                    bytes=int(i["bytes"]),
                    sha256=i["sha256"],
                    restore=i["restore"],
                )
                for i in data["items"]
            ),
            warnings=tuple(data.get("warnings", ())),
        )
    except FileNotFoundError:
        raise BackupError(
            f"{path} does not exist: the backup in {folder} is unfinished or not a backup"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{path} is not a valid backup manifest: {exc}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
