"""The postmortem file as ``emergency`` writes it: rendered from the model, written atomically,
and read back by the loader into the same model."""

from __future__ import annotations

from pathlib import Path

import pytest

from backout.postmortems.collection import Record, load, parse
from backout.postmortems.file import render_postmortem, write_postmortem
from tests.postmortems.samples import NOW, as_read_back, full_postmortem


def test_a_rendered_postmortem_parses_back_into_the_same_model() -> None:
    pm = full_postmortem()
    text = render_postmortem(pm)

    parsed = parse(text, Path("INC-20261124-01-x.md"), None)

    assert isinstance(parsed, Record)
    assert parsed.problems == ()
    assert parsed.pm == as_read_back(pm)
    assert text.startswith("---\nid: INC-20261124-01\n")
    assert "ALTER TABLE events DROP COLUMN score;\n```" in parsed.body
    assert "introduced by commit 1234567 (Di)" in parsed.body
    assert parsed.body.startswith("\n# INC-20261124-01: Rollback of 004_alter_events on staging")


def test_a_written_postmortem_is_loaded_from_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "INC-20261124-01-x.md"

    write_postmortem(path, full_postmortem())
    write_postmortem(path, full_postmortem().with_entry(NOW, "again"))

    (record,) = load(tmp_path).records
    assert record.path == path
    assert record.pm.timeline[-1].text == "again"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_failed_write_leaves_the_file_as_it_was_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "INC-20261124-01-x.md"
    write_postmortem(path, full_postmortem())
    before = path.read_text()

    def full_disk(self: Path, target: Path) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", full_disk)

    with pytest.raises(OSError, match="No space left"):
        write_postmortem(path, full_postmortem().with_entry(NOW, "x"))

    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
