"""The project the ``backout postmortems`` command tests run in: three postmortems committed,
deadlines relative to the moment the test runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers import git_commit
from tests.postmortems.samples import AT, iso, postmortem


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    now = datetime.now(UTC)
    files = {
        "backout.toml": 'migrations = ["migrations"]\n',
        "migrations/.keep": "",
        "ops/postmortems/README.md": "# Postmortems\n",
        "ops/postmortems/INC-20261120-01-late.md": postmortem(
            "INC-20261120-01",
            title="Late one",
            owner="Bo",
            review_due=iso(now - timedelta(hours=5)),
        ),
        "ops/postmortems/INC-20261123-01-soon.md": postmortem(
            "INC-20261123-01",
            title="Soon one",
            review_due=iso(now + timedelta(hours=20)),
            team="payments",
        ),
        "ops/postmortems/INC-20261101-01-done.md": postmortem(
            "INC-20261101-01",
            title="Done one",
            status="reviewed",
            review_due=iso(now - timedelta(days=20)),
        ),
    }
    git_commit(tmp_path, files, "postmortems", at=AT)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_ACTOR", "lead")
    for name in ("BACKOUT_CONFIG", "BACKOUT_POSTMORTEMS", "BACKOUT_REMIND_WEBHOOK"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path
