"""How a backup is put back: each item's psql commands, and ``RESTORE.md`` for the whole.

Pure text: a whole table is loaded back with ``\\copy`` (and its sequences reset); some columns
go through a temporary table and an ``UPDATE ... FROM`` matched on the primary key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from backout.operations.backup.manifest import Manifest, ManifestItem
from backout.operations.backup.planning import BackupItem, quoted


def restore_commands(item: BackupItem) -> str:
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
        "and run, for each object, in this order (a table after those its foreign keys reference):",
        "",
    ]
    for item in restore_order(manifest.items):
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


T = TypeVar("T")


def parents_first(items: Sequence[T], parents: Mapping[int, set[int]]) -> tuple[T, ...]:
    """``items`` with each one after the items ``parents`` says it references (by index), in
    their own order otherwise; items caught in a cycle of references keep their own order."""
    placed: list[int] = []
    left = list(range(len(items)))
    while left:
        ready = [i for i in left if not (parents.get(i, set()) - {i}) - set(placed)]
        chosen = ready[0] if ready else left[0]
        placed.append(chosen)
        left.remove(chosen)
    return tuple(items[i] for i in placed)


def restore_order(items: Sequence[ManifestItem]) -> tuple[ManifestItem, ...]:
    """The manifest's items, each after the tables it references (as recorded at backup time)."""
    index = {item.table: n for n, item in enumerate(items)}
    parents = {n: {index[t] for t in item.references if t in index} for n, item in enumerate(items)}
    return parents_first(items, parents)
