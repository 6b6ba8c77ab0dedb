"""A backup's record of itself: ``manifest.json``, what it holds, and reading it back.

The manifest gives, for each file, the object it holds, its row count, size, SHA-256 and the
psql commands that restore it. It is written last: a folder without one is an unfinished backup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from backout.errors import BackoutError, ExitCode

MANIFEST = "manifest.json"
CHECKSUMS = "SHA256SUMS"
RESTORE = "RESTORE.md"
FORMAT = "binary"


class BackupError(BackoutError):
    """The backup could not be taken; nothing was run."""

    exit_code = ExitCode.FAILED


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
    references: tuple[str, ...] = ()
    """The other items' tables this one's table references by foreign key, when the backup was
    taken: they are restored first."""


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
                    "references": list(i.references),
                }
                for i in self.items
            ],
            "warnings": list(self.warnings),
        }


def read_manifest(folder: Path) -> Manifest:
    """The manifest of the backup in ``folder``."""
    path = folder / MANIFEST
    try:
        return _from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise BackupError(
            f"{path} does not exist: the backup in {folder} is unfinished or not a backup"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{path} is not a valid backup manifest: {exc}") from None


def _from_json(data: Any) -> Manifest:
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
                references=tuple(i.get("references", ())),
            )
            for i in data["items"]
        ),
        warnings=tuple(data.get("warnings", ())),
    )
