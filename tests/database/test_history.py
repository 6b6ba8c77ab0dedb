"""The history and audit tables: the audit trail is append-only."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from backout.config import Settings
from backout.database.connection import Target
from backout.operations.apply import apply
from tests.sample_project import ME


def test_the_audit_table_refuses_updates_and_deletes(
    settings: Settings, target: Target, conn: psycopg.Connection[Any]
) -> None:
    apply(settings, target, ME, to="001")

    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("UPDATE backout_audit_event SET outcome = 'x'")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("DELETE FROM backout_audit_event")
