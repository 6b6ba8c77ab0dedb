"""The loader: postmortems read from the folder and the branches, broken files reported, and
what ``emergency`` asks of the folder (an unfinished incident, the ids already taken)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from backout.errors import RefusedError
from backout.postmortems.collection import (
    Broken,
    Record,
    load,
    parse,
    rewrite,
    taken_incident_ids,
    unfinished_incident,
)
from backout.postmortems.file import write_postmortem
from backout.postmortems.model import Entry, Postmortem
from tests.helpers import git_commit
from tests.postmortems.samples import AT, NOW, git, postmortem
from tests.runner import run

OPENED = Postmortem(
    id="INC-20261124-01",
    title="Rollback of 004_x on staging",
    severity="SEV2",
    environment="staging",
    migration="004_x",
    owner="Ada",
    reason="errors",
    operator="Ada",
    started_at=NOW,
    timeline=(Entry(NOW, "incident opened by Ada: errors"),),
)


def test_a_broken_file_is_reported_with_its_line_and_the_others_still_read(
    tmp_path: Path,
) -> None:
    (tmp_path / "README.md").write_text("# Postmortems\n\nHow we write them.\n")
    (tmp_path / "INC-20261124-01-a.md").write_text(postmortem("INC-20261124-01"))
    (tmp_path / "INC-20261124-02-b.md").write_text("---\nid: INC-20261124-02\ntitle: [oops\n---\n")

    found = load(tmp_path)

    assert [r.pm.id for r in found.records] == ["INC-20261124-01"]
    (broken,) = found.broken
    assert isinstance(broken, Broken)
    assert broken.path.name == "INC-20261124-02-b.md"
    assert broken.line == 4
    assert "not valid YAML" in broken.message


def test_values_that_do_not_read_are_problems_at_their_line() -> None:
    text = postmortem(
        "INC-20261124-01",
        status="done-ish",
        review_due="next week",
        action_items=["call Bo", {"title": "Fix", "owner": "Bo", "due": "soon"}],
    )

    parsed = parse(text, Path("INC-20261124-01-x.md"), None)

    assert isinstance(parsed, Record)
    lines = text.splitlines()
    assert [(lines[n - 1].split(":")[0], message) for n, message in parsed.problems] == [
        (
            "status",
            "unknown status 'done-ish': "
            "one of draft, in_review, reviewed, published, closed, not_required",
        ),
        ("review_due", "review_due 'next week' is not a UTC ISO 8601 time"),
        ("action_items", "action item 1 is not a mapping"),
        ("action_items", "action item 2: due 'soon' is not a date"),
    ]
    assert parsed.pm.review_due is None
    assert [(i.title, i.due) for i in parsed.pm.action_items] == [("Fix", None)]


def test_a_file_without_front_matter_or_id_is_not_a_postmortem() -> None:
    assert parse("# Postmortems\n", Path("README.md"), None) is None
    assert parse("---\ntitle: notes\n---\n", Path("notes.md"), None) is None


def test_a_postmortem_only_on_a_branch_cannot_be_rewritten() -> None:
    parsed = parse(postmortem("INC-20261124-01"), Path("x.md"), "incident/INC-20261124-01")
    assert isinstance(parsed, Record)

    with pytest.raises(RefusedError, match="exists only on the branch incident/INC-20261124-01"):
        rewrite(parsed, parsed.front)


def test_the_unfinished_incident_of_the_same_migration_and_environment_is_found(
    tmp_path: Path,
) -> None:
    finished = replace(OPENED, rolled_back_at=NOW + timedelta(minutes=5))
    write_postmortem(tmp_path / "INC-20261124-01-done.md", finished)
    write_postmortem(
        tmp_path / "INC-20261124-02-prod.md",
        replace(OPENED, id="INC-20261124-02", environment="production"),
    )
    write_postmortem(tmp_path / "notes-004.md", replace(OPENED, id="INC-20261124-05"))
    write_postmortem(tmp_path / "INC-20261124-03-x.md", replace(OPENED, id="INC-20261124-03"))

    found = unfinished_incident(tmp_path, "004_x", "staging")

    assert found is not None
    assert found.path == tmp_path / "INC-20261124-03-x.md"
    assert found.pm.id == "INC-20261124-03"
    assert found.pm.timeline == OPENED.timeline
    assert unfinished_incident(tmp_path, "005_y", "staging") is None
    assert unfinished_incident(tmp_path / "missing", "004_x", "staging") is None


def test_incident_ids_are_taken_by_files_branches_and_files_on_branches(tmp_path: Path) -> None:
    folder = tmp_path / "ops/postmortems"
    git_commit(tmp_path, {"ops/postmortems/INC-20261124-01-a.md": "a\n"}, "first", at=AT)
    git(tmp_path, "switch", "--quiet", "-c", "incident/INC-20261124-03")
    git_commit(tmp_path, {"ops/postmortems/INC-20261124-02-b.md": "b\n"}, "branch", at=AT)
    git(tmp_path, "switch", "--quiet", "-")
    (folder / "INC-20261124-05-notes.txt").write_text("not committed\n")

    taken = taken_incident_ids(tmp_path, folder)

    assert taken == {"INC-20261124-01", "INC-20261124-02", "INC-20261124-03", "INC-20261124-05"}


def test_outside_a_repository_only_the_folder_takes_ids(tmp_path: Path) -> None:
    (tmp_path / "INC-20261124-07-a.md").write_text("x\n")

    assert taken_incident_ids(tmp_path, tmp_path) == {"INC-20261124-07"}
    assert taken_incident_ids(tmp_path, tmp_path / "missing") == set()


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
