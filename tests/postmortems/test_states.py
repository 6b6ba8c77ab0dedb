"""Review states: the transitions (pure), and ``backout postmortems set-status`` writing them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from backout.errors import ExitCode, RefusedError, UsageError
from backout.postmortems.states import change_status
from tests.postmortems.samples import NOW, git, postmortem, record
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


def test_reviewed_is_refused_while_todo_placeholders_remain_and_says_where() -> None:
    in_review = record(status="in_review")
    text = postmortem("INC-20261124-01", status="in_review")
    todo_line = text.splitlines().index("TODO: impact") + 1

    with pytest.raises(RefusedError) as caught:
        change_status(in_review, "reviewed", by="Lead", at=NOW)

    assert caught.value.exit_code == ExitCode.REFUSED
    assert caught.value.message == (
        f"INC-20261124-01 cannot be reviewed: TODO placeholders are left at line {todo_line} "
        "(# Body)"
    )
    assert "--force --reason TEXT" in str(caught.value.hint)


def test_force_accepts_the_placeholders_only_with_a_reason_and_records_both() -> None:
    with pytest.raises(UsageError, match="--force needs a reason"):
        change_status(record(status="in_review"), "reviewed", by="Lead", at=NOW, force=True)

    front = change_status(
        record(status="in_review"), "reviewed", by="Lead", at=NOW, force=True, reason="ship it"
    )

    assert front["status"] == "reviewed"
    assert front["history"][-1] == {
        "status": "reviewed",
        "at": "2026-11-24T12:00:00Z",
        "by": "Lead",
        "reason": "ship it",
        "forced": "1 TODO placeholder(s) left",
    }


def test_set_status_reviewed_with_placeholders_exits_4_and_leaves_the_file(project: Path) -> None:
    path = project / "ops/postmortems/INC-20261123-01-soon.md"
    assert run("postmortems", "set-status", "INC-20261123-01", "in_review").exit_code == 0
    before = path.read_text()

    refused = run("postmortems", "set-status", "INC-20261123-01", "reviewed")
    forced = run(
        "postmortems", "set-status", "INC-20261123-01", "reviewed",
        "--force", "--reason", "impact is in the incident channel", "--json",
    )  # fmt: skip

    assert refused.exit_code == ExitCode.REFUSED
    assert refused.stderr.startswith(
        "backout: error: INC-20261123-01 cannot be reviewed: TODO placeholders are left at line"
    )
    assert json.loads(forced.stdout)["to"] == "reviewed"
    front = yaml.safe_load(path.read_text().split("---\n")[1])
    assert before != path.read_text()
    assert front["history"][-1]["reason"] == "impact is in the incident channel"
    assert front["history"][-1]["forced"] == "1 TODO placeholder(s) left"


def test_show_of_a_postmortem_only_on_a_branch_hints_all_branches(project: Path) -> None:
    git(project, "switch", "--quiet", "-c", "incident/INC-20261124-01")
    (project / "ops/postmortems/INC-20261124-01-x.md").write_text(postmortem("INC-20261124-01"))
    git(project, "add", "ops")
    git(project, "commit", "--quiet", "-m", "incident")
    git(project, "switch", "--quiet", "-")

    here = run("postmortems", "show", "INC-20261124-01")
    everywhere = run("postmortems", "show", "INC-20261124-01", "--all-branches", "--json")

    assert here.exit_code == ExitCode.USAGE
    assert here.stderr.rstrip().endswith(
        "one that exists only on a branch is found with --all-branches"
    )
    assert json.loads(everywhere.stdout)["id"] == "INC-20261124-01"
