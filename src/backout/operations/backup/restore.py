"""How a backup is put back: each item's psql commands, and ``RESTORE.md`` for the whole.

Pure text: a whole table is loaded back with ``\\copy`` (and its sequences reset); some columns
go through a temporary table and an ``UPDATE ... FROM`` matched on the primary key.
"""

from __future__ import annotations

from backout.operations.backup.manifest import Manifest
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
