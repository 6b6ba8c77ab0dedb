"""Postmortems for leads: deadlines, states, listing, branches, checks, calendar, digest, remind.

Deadline arithmetic takes an injected moment; the command-line tests write deadlines relative
to the moment they run, so no test depends on the day it runs.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import icalendar
import pytest
import yaml

from backout.errors import ExitCode, RefusedError
from backout.postmortems.collection import Broken, Record, load, parse
from backout.postmortems.deadlines import ClockPolicy, action_item_due, in_words, review_due
from backout.postmortems.digest import digest, markdown
from backout.postmortems.states import change_status
from tests.helpers import git_commit
from tests.runner import run

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # a Tuesday
AT = "2026-11-20T10:00:00Z"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def postmortem(incident: str, **front: Any) -> str:
    data: dict[str, Any] = {
        "id": incident,
        "title": f"Rollback of something ({incident})",
        "status": "draft",
        "severity": "SEV2",
        "owner": "Ada",
        "started_at": iso(NOW - timedelta(hours=1)),
        "rolled_back_at": iso(NOW - timedelta(hours=1)),
        "review_due": iso(NOW + timedelta(hours=71)),
        "action_items": [],
        "history": [{"status": "draft", "at": iso(NOW - timedelta(hours=1)), "by": "Ada"}],
    }
    data.update(front)
    return "---\n" + yaml.safe_dump(data, sort_keys=False) + "---\n\n# Body\n\nTODO: impact\n"


def record(**front: Any) -> Record:
    parsed = parse(postmortem("INC-20261124-01", **front), Path("INC-20261124-01-x.md"), None)
    assert isinstance(parsed, Record)
    return parsed


# -- deadlines --------------------------------------------------------------------------------


def test_a_wall_clock_review_is_due_72_hours_later_across_a_daylight_saving_change() -> None:
    start = datetime(2026, 10, 24, 9, 0, tzinfo=UTC)  # Europe/Paris leaves summer time on the 25th

    assert review_due(start, ClockPolicy(72, "wall", "Europe/Paris")) == start + timedelta(hours=72)


def test_business_hours_skip_the_weekend() -> None:
    friday_4pm_paris = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)

    due = review_due(friday_4pm_paris, ClockPolicy(72, "business", "Europe/Paris"))

    # 8 h left on Friday, 24 on Monday, 24 on Tuesday, 16 on Wednesday: Wednesday 16:00 Paris
    assert due == datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


def test_business_hours_count_local_midnights_across_a_daylight_saving_change() -> None:
    friday_10am_paris_summer_time = datetime(2026, 10, 23, 8, 0, tzinfo=UTC)

    due = review_due(friday_10am_paris_summer_time, ClockPolicy(24, "business", "Europe/Paris"))

    # 14 h to Saturday 00:00 (+02:00); Monday starts at 00:00 +01:00 = Sunday 23:00 UTC; 10 h more
    assert due == datetime(2026, 10, 26, 9, 0, tzinfo=UTC)


def test_a_review_opened_on_a_weekend_starts_counting_on_monday() -> None:
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    due = review_due(saturday, ClockPolicy(1, "business", "UTC"))

    assert due == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


def test_action_items_default_by_severity_and_deadlines_read_in_words() -> None:
    days = {"SEV1": 15, "SEV2": 30}

    assert action_item_due(NOW, "SEV1", days) == date(2026, 12, 9)
    assert action_item_due(NOW, "SEV2", days) == date(2026, 12, 24)
    assert in_words(timedelta(hours=5)) == "in 5 h"
    assert in_words(timedelta(hours=72)) == "in 72 h"
    assert in_words(-timedelta(days=2, hours=1)) == "overdue by 49 h"
    assert in_words(-timedelta(days=5)) == "overdue by 5 d"


# -- states -----------------------------------------------------------------------------------


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


# -- reading ----------------------------------------------------------------------------------


def test_a_broken_file_is_reported_with_its_line_and_the_others_still_read(
    tmp_path: Path,
) -> None:
    (tmp_path / "README.md").write_text("# Postmortems\n\nHow we write them.\n")
    (tmp_path / "INC-20261124-01-a.md").write_text(postmortem("INC-20261124-01"))
    (tmp_path / "INC-20261124-02-b.md").write_text("---\nid: INC-20261124-02\ntitle: [oops\n---\n")

    found = load(tmp_path)

    assert [r.id for r in found.records] == ["INC-20261124-01"]
    (broken,) = found.broken
    assert isinstance(broken, Broken)
    assert broken.path.name == "INC-20261124-02-b.md"
    assert broken.line == 4
    assert "not valid YAML" in broken.message


def test_digest_counts_the_period_and_lists_overdue_and_due_soon() -> None:
    late = record(review_due=iso(NOW - timedelta(hours=3)))
    soon = parse(
        postmortem("INC-20261124-02", review_due=iso(NOW + timedelta(days=2))), Path("b.md"), None
    )
    assert isinstance(soon, Record)

    d = digest([late, soon], NOW - timedelta(days=7), NOW)

    assert [r.id for r in d.overdue] == ["INC-20261124-01"]
    assert [r.id for r in d.due_soon] == ["INC-20261124-02"]
    assert len(d.opened) == 2
    text = markdown(d)
    assert "review overdue by 3 h" in text
    assert text.startswith("# Postmortems: 2026-11-17 to 2026-11-24")


# -- the command line -------------------------------------------------------------------------


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


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout


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


def test_all_branches_reads_postmortems_only_on_incident_and_remote_branches(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    git(project, "switch", "--quiet", "-c", "incident/INC-20261124-01")
    (project / "ops/postmortems/INC-20261124-01-x.md").write_text(postmortem("INC-20261124-01"))
    git(project, "add", "ops")
    git(project, "commit", "--quiet", "-m", "incident")
    git(project, "switch", "--quiet", "-")
    clone = tmp_path_factory.mktemp("clone")
    git(clone, "clone", "--quiet", str(project), ".")
    git(clone, "config", "user.name", "C")
    git(clone, "config", "user.email", "c@example.com")

    here = json.loads(run("postmortems", "list", "--json").stdout)["postmortems"]
    everywhere = json.loads(run("postmortems", "list", "--all-branches", "--json").stdout)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(clone)
        remote = json.loads(run("postmortems", "list", "--all-branches", "--json").stdout)

    assert "INC-20261124-01" not in [p["id"] for p in here]
    branch = {p["id"]: p["branch"] for p in everywhere["postmortems"]}
    assert branch["INC-20261124-01"] == "incident/INC-20261124-01"
    assert branch["INC-20261120-01"] is None
    remote_branch = {p["id"]: p["branch"] for p in remote["postmortems"]}
    assert remote_branch["INC-20261124-01"] == "origin/incident/INC-20261124-01"


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


def test_check_is_a_ci_gate_with_github_annotations(project: Path) -> None:
    result = run("postmortems", "check", "--format", "github")

    assert result.exit_code == ExitCode.PROBLEMS
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("::error file=ops/postmortems/INC-20261120-01-late.md,")
        and "pm-review-overdue" in line
        for line in lines
    )
    assert any("pm-placeholder" in line and "INC-20261101-01" in line for line in lines)


def test_the_calendar_parses_back_with_stable_uids_and_alarms(project: Path) -> None:
    first = run("postmortems", "calendar", "-o", "a.ics")
    second = run("postmortems", "calendar", "-o", "b.ics")

    assert first.exit_code == second.exit_code == 0
    a = icalendar.Calendar.from_ical((project / "a.ics").read_bytes())
    b = icalendar.Calendar.from_ical((project / "b.ics").read_bytes())
    events = a.walk("VEVENT")
    assert len(events) == 2  # the two reviews still pending; the reviewed one has no deadline
    assert sorted(str(e["uid"]) for e in events) == sorted(str(e["uid"]) for e in b.walk("VEVENT"))
    assert all(e.walk("VALARM") for e in events)
    assert {str(e["uid"]) for e in events} == {
        "INC-20261120-01-review@backout.postmortems",
        "INC-20261123-01-review@backout.postmortems",
    }


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"received": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-token", handler
    server.shutdown()
    server.server_close()


def test_remind_posts_one_slack_compatible_message(
    project: Path, webhook: tuple[str, type[_Hook]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, hook = webhook
    monkeypatch.setenv("BACKOUT_REMIND_WEBHOOK", url)

    result = run("postmortems", "remind")

    assert result.exit_code == 0, result.stderr
    (message,) = hook.received
    assert [r["id"] for r in message["overdue"]] == ["INC-20261120-01"]
    assert [r["id"] for r in message["due_soon"]] == ["INC-20261123-01"]
    assert "INC-20261120-01 Late one (owner Bo): review overdue by 5 h" in message["text"]


def test_a_failed_post_is_an_error_with_the_status_and_no_secret(
    project: Path, webhook: tuple[str, type[_Hook]]
) -> None:
    url, hook = webhook
    hook.status = 500

    result = run("postmortems", "remind", "--webhook", url)

    assert result.exit_code == ExitCode.FAILED
    assert "HTTP 500" in result.stderr
    assert "secret-token" not in result.stderr
