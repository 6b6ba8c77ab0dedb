"""The read cache of postmortems: a warm read gives what a cold one gives, and any change to a
file's text, to backout's version or to the cache file itself is read again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from backout import cache as cache_module
from backout.postmortems.collection import load
from tests.postmortems.samples import postmortem
from tests.runner import run

BROKEN = "---\nid: INC-20261124-02\ntitle: [oops\n---\n"
SET_TAG = "---\nid: INC-20261124-03\ntitle: Sets\ntags: !!set {a: null}\n---\nBody\n"


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ops" / "postmortems"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("# Postmortems\n")
    (folder / "INC-20261124-01-a.md").write_text(
        postmortem("INC-20261124-01", status="done-ish", review_due="next week")
    )
    (folder / "INC-20261124-02-b.md").write_text(BROKEN)
    (folder / "INC-20261124-03-c.md").write_text(SET_TAG)
    return folder


def _entries(path: Path) -> dict[str, object]:
    entries: dict[str, object] = json.loads(path.read_text())["entries"]
    return entries


def test_a_warm_read_gives_what_a_cold_one_and_an_uncached_one_give(tmp_path: Path) -> None:
    folder, kept = _folder(tmp_path), tmp_path / "cache" / "postmortems.json"

    uncached = load(folder)
    cold = load(folder, cache=kept)
    warm = load(folder, cache=kept)

    assert cold == uncached == warm
    assert [r.problems for r in warm.records] == [r.problems for r in uncached.records]
    assert [(r.body, r.body_line, r.front) for r in warm.records] == [
        (r.body, r.body_line, r.front) for r in uncached.records
    ]
    # the README (no front matter), the record and the broken file; the !!set one is not kept
    assert len(_entries(kept)) == 3


def test_an_edit_that_keeps_size_and_mtime_is_still_read_again(tmp_path: Path) -> None:
    folder, kept = _folder(tmp_path), tmp_path / "cache.json"
    load(folder, cache=kept)
    path = folder / "INC-20261124-01-a.md"
    before = path.stat()
    path.write_text(path.read_text().replace("owner: Ada", "owner: Bob"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size

    owners = {r.pm.id: r.pm.owner for r in load(folder, cache=kept).records}

    assert owners["INC-20261124-01"] == "Bob"
    assert len(_entries(kept)) == 3  # the old text's entry is dropped


def test_a_cache_of_another_version_or_unreadable_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, kept = _folder(tmp_path), tmp_path / "cache.json"
    expected = load(folder)
    load(folder, cache=kept)
    payload = json.loads(kept.read_text())
    for entry in payload["entries"].values():
        if "front" in entry:
            entry["front"]["owner"] = "Stale"
    kept.write_text(json.dumps(payload))
    owners = {r.pm.id: r.pm.owner for r in load(folder, cache=kept).records}
    assert owners["INC-20261124-01"] == "Stale"  # the cache is what is read

    monkeypatch.setattr(cache_module, "__version__", "99.0.0")
    assert load(folder, cache=kept) == expected
    assert json.loads(kept.read_text())["version"] == "99.0.0"
    kept.write_text("{not json")
    assert load(folder, cache=kept) == expected


def test_a_cache_that_cannot_be_written_changes_nothing(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")

    assert load(folder, cache=blocker / "cache.json") == load(folder)


def test_postmortems_list_prints_the_same_cold_and_warm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _folder(tmp_path)
    (tmp_path / "backout.toml").write_text('migrations = ["migrations"]\n')
    monkeypatch.chdir(tmp_path)

    cold = run("postmortems", "list")
    assert (tmp_path / ".backout" / "cache" / "postmortems.json").is_file()
    warm = run("postmortems", "list")

    assert cold == warm
    assert "INC-20261124-01" in warm.stdout
    assert "INC-20261124-02-b.md:4" in warm.stderr
