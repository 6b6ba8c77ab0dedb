"""The migration lock: a second run waits, then names the session that holds it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from backout.config import Settings
from backout.database.connection import Target
from backout.database.lock import LOCK_KEY, LockHeldError
from backout.errors import ExitCode
from backout.operations.apply import apply
from tests.sample_project import FAST, ME, states, write


def test_a_second_run_waits_for_the_lock_then_names_its_holder(
    settings: Settings, target: Target, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True, application_name="other run") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))

        with pytest.raises(LockHeldError) as caught:
            apply(settings, target, ME, options=FAST)

        assert caught.value.exit_code == ExitCode.LOCKED
        assert f"pid {holder.info.backend_pid}" in str(caught.value)
        assert "application 'other run'" in str(caught.value)
    assert set(states(settings, target).values()) == {"pending"}


def test_two_concurrent_applies_the_second_waits_then_names_the_first(
    project: Path, settings: Settings, target: Target
) -> None:
    write(project, "007_slow.sql", "SELECT pg_sleep(2);", "SELECT 1;")
    first = threading.Thread(target=lambda: apply(settings, target, ME))
    first.start()
    time.sleep(0.5)

    with pytest.raises(LockHeldError) as caught:
        apply(settings, target, ME, options=FAST)
    first.join()

    assert "application 'backout'" in str(caught.value)
    assert set(states(settings, target).values()) == {"applied"}
