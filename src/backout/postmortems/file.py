"""Writing a postmortem file: the YAML front matter, then the body from the ``postmortem.md.j2``
template, written atomically (a reader or a crash sees the old file or the new one)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from backout.postmortems.front_matter import dump, to_front_matter
from backout.postmortems.model import Postmortem
from backout.redaction import redact
from backout.templating import render

TEMPLATE = "postmortem.md.j2"


def render_postmortem(pm: Postmortem, templates: Path | None = None) -> str:
    """The whole file: ``---``, the YAML front matter, ``---``, then the templated body."""
    body = render(TEMPLATE, {"pm": pm, "entries": pm.timeline}, templates)
    return f"---\n{dump(to_front_matter(pm))}---\n\n{body}"


def write_postmortem(path: Path, pm: Postmortem, templates: Path | None = None) -> None:
    """Write the file atomically: a temporary file in the same folder, then a rename."""
    write_atomically(path, render_postmortem(pm, templates))


def write_atomically(path: Path, text: str) -> None:
    """``text`` into ``path``: a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(redact(text))  # a URL typed into a reason or a note keeps no password
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
