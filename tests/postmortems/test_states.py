"""Review states: the transitions (pure), and ``backout postmortems set-status`` writing them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from backout.errors import ExitCode, RefusedError
from backout.postmortems.states import change_status
from tests.postmortems.samples import NOW, git, record
from tests.runner import run


def test_states_move_one_step_at_a_time_and_record_who_and_when() -> None:
    front = change_status(record(), "in_review", by="Lead", at=NOW)

    assert front["status"] == "in_review"
    assert front["history"][-1] == {
        "status": "in_review",
        "at": "2026-11-24T12:00:00Z",
        "by": "Lead",
    }
    with pytest.raises(RefusedError, match="cannot go from draft to reviewed") as caught:
        change_status(record(), "reviewed", by="Lead", at=NOW)
    assert caught.value.exit_code == ExitCode.REFUSED


def test_not_required_needs_a_reason() -> None:
    with pytest.raises(RefusedError, match="needs a reason"):
        change_status(record(), "not_required", by="Lead", at=NOW)

    front = change_status(record(), "not_required", by="Lead", at=NOW, reason="test database")

    assert front["history"][-1]["reason"] == "test database"


def test_closing_needs_every_action_item_done_and_no_stub_left() -> None:
    open_item = {"title": "Write 007", "owner": "Ada", "due": "2026-12-24", "status": "open"}
    moved = {
        "title": "Alerting",
        "owner": "Bo",
        "due": "2026-12-24",
        "status": "moved",
        "link": "https://tracker.example/T-1",
    }
    done = {**open_item, "status": "done"}

    with pytest.raises(RefusedError, match="1 action item"):
        change_status(
            record(status="published", action_items=[open_item, moved]), "closed", by="Lead", at=NOW
        )
    with pytest.raises(RefusedError, match="still an unfinished stub"):
        change_status(
            record(status="published", action_items=[done]),
            "closed",
            by="Lead",
            at=NOW,
            stub_left=True,
        )
    front = change_status(
        record(status="published", action_items=[done, moved]), "closed", by="Lead", at=NOW
    )
    assert front["status"] == "closed"


def test_set_status_keeps_unknown_keys_and_commits_the_file_alone(project: Path) -> None:
    path = project / "ops/postmortems/INC-20261123-01-soon.md"
    (project / "other.txt").write_text("staged work\n")
    git(project, "add", "other.txt")

    result = run(
        "postmortems", "set-status", "inc-20261123-01", "in_review", "--by", "Lu", "--commit"
    )

    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("INC-20261123-01: draft -> in_review")
    front = yaml.safe_load(path.read_text().split("---\n")[1])
    assert front["team"] == "payments"
    assert front["status"] == "in_review"
    assert front["history"][-1]["by"] == "Lu"
    assert path.read_text().endswith("# Body\n\nTODO: impact\n")
    committed = git(project, "show", "--name-only", "--format=", "HEAD").split()
    assert committed == ["ops/postmortems/INC-20261123-01-soon.md"]
    assert git(project, "diff", "--cached", "--name-only").split() == ["other.txt"]


def test_a_refused_transition_exits_4_and_an_unknown_id_2(project: Path) -> None:
    refused = run("postmortems", "set-status", "INC-20261120-01", "closed")
    unknown = run("postmortems", "show", "INC-20261120-09")

    assert refused.exit_code == ExitCode.REFUSED
    assert refused.stderr.startswith("backout: error: INC-20261120-01 cannot go from draft")
    assert unknown.exit_code == ExitCode.USAGE
    assert "did you mean" in unknown.stderr
