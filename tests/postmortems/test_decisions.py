"""The decisions log: rendering entries (pure) and appending them to a real file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from backout.postmortems.decisions import Decision, append_decision, heading_level, render_entry
from tests.helpers import write_tree

APPLIED = Decision(
    date=date(2026, 11, 24),
    title="Applied 004_alter_events_add_impact_score to staging",
    context="release 12 needs the impact score",
    decision="Applied 004_alter_events_add_impact_score to staging with backout",
    consequences="recorded in the history table and the audit trail",
    owner="github:ada",
)
APPLIED_ENTRY = (
    "## 2026-11-24: Applied 004_alter_events_add_impact_score to staging\n"
    "\n"
    "- **Context**: release 12 needs the impact score\n"
    "- **Decision**: Applied 004_alter_events_add_impact_score to staging with backout\n"
    "- **Consequences**: recorded in the history table and the audit trail\n"
    "- **Owner**: github:ada\n"
)
LOG_WITH_LEVEL_3 = """\
# Architecture decisions

## Migrations

### 2026-11-01: Use raw SQL migrations

- **Context**: phase 1
- **Decision**: raw SQL files with rollback comments
"""


def test_a_new_log_gets_a_title_and_the_entry(tmp_path: Path) -> None:
    log = tmp_path / "docs" / "decisions.md"

    append_decision(log, APPLIED)

    assert log.read_text() == "# Decisions\n\n" + APPLIED_ENTRY


def test_an_empty_log_gets_a_title_and_the_entry(tmp_path: Path) -> None:
    log = write_tree(tmp_path, {"decisions.md": ""}) / "decisions.md"

    append_decision(log, APPLIED)

    assert log.read_text() == "# Decisions\n\n" + APPLIED_ENTRY


def test_entries_are_appended_in_order(tmp_path: Path) -> None:
    log = tmp_path / "decisions.md"
    rolled_back = Decision(
        date=date(2026, 11, 25),
        title="Rolled back 004_alter_events_add_impact_score on staging",
        context="the score broke the events API",
        decision="Rolled back 004_alter_events_add_impact_score on staging with backout",
        consequences="impact_score is gone; fix forward in 005",
        owner="Ada Lovelace <ada@example.com>",
    )

    append_decision(log, APPLIED)
    append_decision(log, rolled_back)

    text = log.read_text()
    assert text.startswith("# Decisions\n\n" + APPLIED_ENTRY + "\n## 2026-11-25: Rolled back ")
    assert text.endswith("- **Owner**: Ada Lovelace <ada@example.com>\n")


def test_an_existing_log_keeps_its_heading_level_and_content(tmp_path: Path) -> None:
    log = write_tree(tmp_path, {"decisions.md": LOG_WITH_LEVEL_3}) / "decisions.md"

    append_decision(log, APPLIED)

    assert log.read_text() == LOG_WITH_LEVEL_3 + "\n#" + APPLIED_ENTRY


def test_existing_bytes_are_preserved_exactly(tmp_path: Path) -> None:
    original = "# Décisions\r\n\r\n- kept as is   \r\nno final newline".encode()
    log = tmp_path / "decisions.md"
    log.write_bytes(original)

    append_decision(log, APPLIED)

    data = log.read_bytes()
    assert data.startswith(original)
    assert data[len(original) :] == ("\n\n" + APPLIED_ENTRY).replace("\n", "\r\n").encode()


def test_appending_leaves_no_temporary_file_and_keeps_permissions(tmp_path: Path) -> None:
    log = write_tree(tmp_path, {"decisions.md": "# Decisions\n"}) / "decisions.md"
    log.chmod(0o640)

    append_decision(log, APPLIED)

    assert [p.name for p in tmp_path.iterdir()] == ["decisions.md"]
    assert log.stat().st_mode & 0o777 == 0o640


def test_a_symbolic_link_to_the_log_is_followed(tmp_path: Path) -> None:
    real = write_tree(tmp_path, {"shared/decisions.md": "# Decisions\n"}) / "shared/decisions.md"
    link = tmp_path / "docs" / "decisions.md"
    link.parent.mkdir()
    link.symlink_to(real)

    append_decision(link, APPLIED)

    assert link.is_symlink()
    assert real.read_text() == "# Decisions\n\n" + APPLIED_ENTRY


def test_a_failed_write_leaves_the_log_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = write_tree(tmp_path, {"decisions.md": "# Decisions\n"}) / "decisions.md"

    def full_disk(self: Path, target: Path) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", full_disk)

    with pytest.raises(OSError, match="No space left"):
        append_decision(log, APPLIED)

    assert log.read_text() == "# Decisions\n"
    assert [p.name for p in tmp_path.iterdir()] == ["decisions.md"]


# render_entry (pure)


@pytest.mark.parametrize(
    ("existing", "separator"),
    [
        ("", ""),
        ("# Decisions", "\n\n"),
        ("# Decisions\n", "\n"),
        ("# Decisions\n\n", ""),
    ],
)
def test_an_entry_is_separated_from_what_precedes_it_by_one_blank_line(
    existing: str, separator: str
) -> None:
    assert render_entry(APPLIED, existing) == separator + APPLIED_ENTRY


def test_multi_line_values_are_folded_onto_one_line() -> None:
    decision = Decision(
        date=date(2026, 11, 24),
        title="Rolled back 004\non staging",
        context="the API\n  returned 500s\n\nfor ten minutes",
        decision="roll back",
        consequences="",
        owner="ci",
    )

    assert render_entry(decision, "") == (
        "## 2026-11-24: Rolled back 004 on staging\n"
        "\n"
        "- **Context**: the API returned 500s for ten minutes\n"
        "- **Decision**: roll back\n"
        "- **Consequences**:\n"
        "- **Owner**: ci\n"
    )


@pytest.mark.parametrize(
    ("existing", "level"),
    [
        ("", 2),
        ("# Decisions\n\n## Context\n", 2),
        (LOG_WITH_LEVEL_3, 3),
        ("#### 2026-01-01 old style\n\n## 2026-02-01: newer\n", 2),
        ("## 2026-01-01: first\n\n### Notes\n", 2),
        ("### 2026-01-01: first\n\n```markdown\n## 2026-02-01: an example\n```\n", 3),
        ("## 20261101 not a date\n#### 2026-11-01\n", 4),
    ],
)
def test_the_heading_level_is_that_of_the_last_dated_heading(existing: str, level: int) -> None:
    assert heading_level(existing) == level
