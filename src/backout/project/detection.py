"""What a repository already has: its migration folders and their formats, its postmortems
folder and its backout configuration. Read-only: the file system in, a :class:`Detected` out.

A migration folder is one holding files a migration format lists with a version (``001_x.sql``,
``20240101_x.sql``, ``V1__x.sql``, ``1_x/up.sql``...); its sub-folders are not looked into.
Hidden folders and those of dependencies, builds and tests are skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from backout.config import CONFIG_FILE, DEFAULT_POSTMORTEMS, PYPROJECT, Settings, load_settings
from backout.migrations.formats import detect, get_format

MAX_DEPTH = 4
SKIPPED = frozenset(
    {
        "node_modules", "venv", "env", "__pycache__", "target", "dist", "build", "vendor",
        "site-packages", "tests", "test", "testdata", "fixtures", "examples", "templates",
    }
)  # fmt: skip
"""Folder names never looked into (besides hidden ones)."""
POSTMORTEM_FOLDERS = (DEFAULT_POSTMORTEMS, "docs/postmortems", "postmortems", "docs/incidents")
"""Where a postmortems folder is looked for, in order; the first is created when none exists."""


@dataclass(frozen=True)
class Folder:
    """A migration folder: relative to the root, in a format, with so many migrations."""

    path: str
    format: str
    migrations: int


@dataclass(frozen=True)
class Detected:
    """What :func:`detect_project` found at ``root``."""

    root: Path
    folders: tuple[Folder, ...]
    postmortems: str
    """The postmortems folder, relative to the root (found, else the default)."""
    postmortems_found: bool
    config_file: Path | None
    """The file already holding backout's settings at the root, if any."""

    def settings(self) -> Settings:
        """The settings these folders give (the existing configuration's when there is one)."""
        if self.config_file is not None:
            return load_settings(self.root, {})
        return Settings(
            root=self.root,
            config_file=None,
            migrations=tuple(self.root / f.path for f in self.folders),
            postmortems=self.root / self.postmortems,
            templates=self.root / "templates",
        )


def detect_project(root: Path) -> Detected:
    """The migration folders, postmortems folder and configuration found at ``root``."""
    root = root.resolve()
    config = existing_config(root)
    if config is not None:
        settings = load_settings(root, {})
        folders = tuple(_folder(f, settings.relative(f)) for f in settings.migrations if f.is_dir())
        postmortems = settings.relative(settings.postmortems)
    else:
        folders = tuple(migration_folders(root))
        postmortems = next((p for p in POSTMORTEM_FOLDERS if (root / p).is_dir()), None) or ""
    found = bool(postmortems) and (root / postmortems).is_dir()
    return Detected(root, folders, postmortems or DEFAULT_POSTMORTEMS, found, config)


def existing_config(root: Path) -> Path | None:
    """``backout.toml``, or a ``pyproject.toml`` with ``[tool.backout]``, at ``root``."""
    if (root / CONFIG_FILE).is_file():
        return root / CONFIG_FILE
    pyproject = root / PYPROJECT
    if pyproject.is_file() and load_settings(root, {}).config_file == pyproject:
        return pyproject
    return None


def migration_folders(root: Path) -> list[Folder]:
    """Every migration folder under ``root``, shallowest first, then by name."""
    found: list[Folder] = []
    pending = [(root, 0)]
    while pending:
        folder, depth = pending.pop(0)
        shown = folder.relative_to(root).as_posix()
        if folder != root and (migrations := _folder(folder, shown)).migrations:
            found.append(migrations)
            continue
        if depth < MAX_DEPTH:
            pending.extend((child, depth + 1) for child in _children(folder))
    return found


def _folder(folder: Path, shown: str) -> Folder:
    format_name = detect(folder)
    versioned = [e for e in get_format(format_name).entries(folder) if e.version is not None]
    return Folder(shown, format_name, len(versioned))


def _children(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as found:
            return sorted(
                Path(item.path)
                for item in found
                if item.is_dir(follow_symlinks=False)
                and not item.name.startswith(".")
                and item.name not in SKIPPED
            )
    except OSError:  # a folder we may not read holds nothing for us
        return []
