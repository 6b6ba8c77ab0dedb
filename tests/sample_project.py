"""The sample project the operations and database tests share: the sample migrations copied into a
temporary folder, its settings, a fresh database, and small helpers.

Its fixtures are registered in tests/conftest.py; a test module may define its own instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.database.runner import RunOptions
from backout.operations.approval import Operator
from backout.operations.status import status
from tests.samples import SAMPLES

ME = Operator("tester")
FAST = RunOptions(lock_wait=0.5, lock_timeout=0.2, lock_retries=1, backoff=0.05)
BANNER = "-- " + "=" * 76


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(SAMPLES, tmp_path / "migrations")
    (tmp_path / "backout.toml").write_text(
        'migrations = ["migrations"]\n'
        "[environments.preview]\n"
        'url_env = "PREVIEW_URL"\n'
        "auto_rollback = true\n"
        "[environments.production]\n"
        'url_env = "PROD_URL"\n'
        "require_approval = true\n"
    )
    return tmp_path


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project, environ={})


@pytest.fixture
def target(database_url: str) -> Target:
    return Target(database_url)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def rows(conn: psycopg.Connection[Any], query: str) -> list[tuple[Any, ...]]:
    return conn.execute(query).fetchall()


def states(settings: Settings, target: Target) -> dict[str, str]:
    return {s.name: s.state.value for s in status(settings, target)}


def write(project: Path, name: str, forward: str, rollback: str) -> None:
    header = f"-- Migration: {name}\n-- Purpose: p\n-- Phase: 1\n-- Checklist: c\n\n"
    block = f"{BANNER}\n-- ROLLBACK\n{BANNER}\n-- To rollback this migration:\n"
    lines = "".join(f"--   {line}\n" for line in rollback.splitlines())
    (project / "migrations" / name).write_text(header + forward + "\n\n" + block + lines)
