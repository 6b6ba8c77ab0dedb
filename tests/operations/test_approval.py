"""Environments that require approval: refused without it, audited with the exact SQL's hash."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from backout.config import Settings
from backout.database.connection import Target
from backout.errors import RefusedError
from backout.operations.apply import apply
from backout.operations.approval import Operator
from tests.sample_project import ME, rows


def test_an_environment_that_requires_approval_refuses_without_it(
    settings: Settings, database_url: str
) -> None:
    production = Target(database_url, settings.environments["production"])

    with pytest.raises(RefusedError, match="requires approval"):
        apply(settings, production, ME)
    with pytest.raises(RefusedError, match="cannot approve their own change"):
        apply(settings, production, Operator("tester", "Tester", "ship it"))


def test_an_approval_is_audited_with_the_hash_of_the_exact_sql(
    settings: Settings, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    production = Target(database_url, settings.environments["production"])

    apply(settings, production, Operator("tester", "lead", "release 12"), to="001")

    approval = rows(
        conn,
        "SELECT approver, reason, environment, length(sql_sha256) FROM backout_audit_event "
        "WHERE action = 'approval'",
    )
    assert approval == [("lead", "release 12", "production", 64)]


def test_a_blank_reason_or_approver_is_no_approval(
    settings: Settings, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    production = Target(database_url, settings.environments["production"])

    with pytest.raises(RefusedError, match="requires approval"):
        apply(settings, production, Operator("tester", "lead", "   "))
    with pytest.raises(RefusedError, match="requires approval"):
        apply(settings, production, Operator("tester", " ", "release 12"))
    assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)
