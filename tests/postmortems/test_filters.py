"""``backout postmortems list``: most urgent first, filtered, and a CI gate on overdue ones."""

from __future__ import annotations

import json
from pathlib import Path

from backout.errors import ExitCode
from tests.runner import run


def test_list_is_sorted_by_urgency_with_the_json_contract(project: Path) -> None:
    result = run("postmortems", "list", "--json")

    assert result.exit_code == 0
    listed = json.loads(result.stdout)["postmortems"]
    assert [p["id"] for p in listed] == ["INC-20261120-01", "INC-20261123-01", "INC-20261101-01"]
    assert set(listed[0]) >= {
        "id",
        "title",
        "status",
        "severity",
        "owner",
        "review_due",
        "overdue",
        "path",
        "branch",
    }
    assert [p["overdue"] for p in listed] == [True, False, False]
    assert listed[0]["review_due"].endswith("Z")
    assert listed[0]["branch"] is None
    assert listed[0]["path"] == "ops/postmortems/INC-20261120-01-late.md"


def test_list_filters_and_fails_on_overdue_for_ci(project: Path) -> None:
    overdue = run("postmortems", "list", "--overdue", "--fail-on-overdue")
    soon = run("postmortems", "list", "--due-within", "24h", "--json")
    bo = run("postmortems", "list", "--owner", "bo", "--json")
    reviewed = run("postmortems", "list", "--status", "reviewed", "--fail-on-overdue")

    assert overdue.exit_code == ExitCode.PROBLEMS
    assert "INC-20261120-01" in overdue.stdout
    assert "overdue by 5 h" in overdue.stdout
    assert "1 postmortem(s), 1 overdue." in overdue.stdout
    assert [p["id"] for p in json.loads(soon.stdout)["postmortems"]] == [
        "INC-20261120-01",
        "INC-20261123-01",
    ]
    assert [p["id"] for p in json.loads(bo.stdout)["postmortems"]] == ["INC-20261120-01"]
    assert reviewed.exit_code == 0
