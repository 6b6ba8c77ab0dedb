"""What reading a file found, kept between runs under ``.backout/cache`` (one JSON file per
use: ``postmortems.json`` for ``postmortems list``, ``lint.json`` for ``lint``).

An entry is keyed by a digest of everything its value depends on: the file's text (so any edit,
however small and whatever its mtime, misses) and whatever else the caller adds (lint's
settings); the whole cache by backout's version (so a new release never reuses what an older
one found). Only entries that JSON gives back exactly are kept (a postmortem whose front matter
uses YAML's ``!!set`` is read again each time). A missing, unreadable or foreign cache is an
empty one; one that cannot be written is not written. The cache never changes what is found.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from backout import __version__

FORMAT = 1


def digest(*parts: str | bytes) -> str:
    """One key for ``parts`` (each one's length goes in too, so no two splits collide)."""
    h = hashlib.blake2b(digest_size=20)
    for part in parts:
        data = part if isinstance(part, bytes) else part.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


class ReadCache:
    """Entries by text digest, read from ``path`` (``None``: a cache that keeps nothing)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._old: dict[str, Any] = _read(path) if path is not None else {}
        self._new: dict[str, Any] = {}
        self._changed = False

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self._old.get(key)
        if isinstance(entry, dict):
            self._new[key] = entry
            return entry
        return None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Keep ``entry`` when JSON gives it back unchanged (else it is read again next time)."""
        try:
            same = json.loads(json.dumps(entry)) == entry
        except (TypeError, ValueError):
            same = False
        if same:
            self._new[key] = entry
            self._changed = True

    def save(self) -> None:
        """Write the entries used in this run (files gone are dropped) when anything changed."""
        if self.path is None or not (self._changed or self._new.keys() != self._old.keys()):
            return
        payload = {"format": FORMAT, "version": __version__, "entries": self._new}
        with contextlib.suppress(OSError):
            _write(self.path, json.dumps(payload, separators=(",", ":")))


def _read(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if (
        not isinstance(payload, dict)
        or payload.get("format") != FORMAT
        or payload.get("version") != __version__
        or not isinstance(payload.get("entries"), dict)
    ):
        return {}
    entries: dict[str, Any] = payload["entries"]
    return entries


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
