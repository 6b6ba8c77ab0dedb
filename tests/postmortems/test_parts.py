"""A shard's part file and the folding of parts into one postmortem: pure, in memory and in
a temporary folder, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backout.errors import UsageError
from backout.postmortems.model import Entry, Postmortem, TargetLine
from backout.postmortems.parts import (
    Part,
    check_parts,
    fold,
    opening_of,
    part_path,
    read_part,
    write_part,
)

T0 = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
INCIDENT = "INC-20261126-01"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def part(index: int, names: tuple[str, ...], *, start: float = 0, **more: object) -> Part:
    """Shard ``index`` of 3: its targets rolled back, three timeline entries from ``start``."""
    pm = Postmortem(
        id=INCIDENT,
        title="Rollback of 006_add_jobs_priority on fleet tenants",
        severity="SEV2",
        environment="tenants",
        migration="006_add_jobs_priority",
        owner="Ada",
        reason="checkout errors",
        operator="Ada",
        started_at=at(start),
        rollback_sql="DROP INDEX x;\n",
        rollback_sha256="abc",
        timeline=(
            Entry(at(start), f"shard {index}/3: opened by Ada: checkout errors"),
            *(Entry(at(start + 1 + n), f"{name}: started") for n, name in enumerate(names)),
        ),
        targets=tuple(TargetLine(name, "rolled back", audit_event=7) for name in names),
    )
    fields: dict[str, object] = {
        "first_commit": at(start + 1),
        "audit_event": 7,
        "finished": True,
        "updated_at": at(start + 10),
        **more,
    }
    return Part(INCIDENT, index, 3, pm, **fields)  # type: ignore[arg-type]


PARTS = (part(1, ("a", "d"), start=5), part(2, ("b", "e"), start=0), part(3, ("c",), start=2))


def test_a_part_written_and_read_back_is_the_same_part(tmp_path: Path) -> None:
    path = part_path(tmp_path, INCIDENT, 2, 3)
    write_part(path, PARTS[1])

    assert path == tmp_path / f"{INCIDENT}.parts" / "shard-2-of-3.json"
    read = read_part(path)
    assert [dict(h) for h in read.pm.history] == [
        {"status": "draft", "at": "2026-11-26T14:00:00Z", "by": "Ada"}
    ]
    assert replace(read, path=None, pm=replace(read.pm, history=())) == PARTS[1]


def test_a_file_that_is_not_a_part_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "shard-1-of-2.json"
    path.write_text("{not json")

    with pytest.raises(UsageError, match=r"shard-1-of-2.json: not a shard's part"):
        read_part(path)


def test_folding_interleaves_the_timelines_by_time_and_lists_every_target() -> None:
    folded = fold(opening_of(PARTS), PARTS)

    texts = [e.text for e in folded.pm.timeline]
    assert texts[0] == "shard 2/3: opened by Ada: checkout errors"  # shard 2 started first
    assert [t.name for t in folded.pm.targets] == ["a", "b", "c", "d", "e"]
    assert folded.first_commit == (at(1), 7)
    assert (folded.reported, folded.missing, folded.stopped, folded.left) == ((1, 2, 3), (), (), ())
    assert folded.pm.started_at == at(0)


def test_folding_the_same_parts_again_changes_nothing() -> None:
    once = fold(opening_of(PARTS), PARTS)
    twice = fold(once.pm, PARTS)

    assert twice.pm == once.pm
    assert twice.changed is False


def test_a_missing_shard_and_an_unfinished_one_are_named() -> None:
    killed = part(2, ("b", "e"), finished=False)
    killed = replace(killed, pm=replace(killed.pm, targets=(TargetLine("b", "running"),)))

    folded = fold(opening_of(PARTS), [PARTS[0], killed])

    assert folded.missing == (3,)
    assert folded.stopped == (2,)
    assert folded.left == ("b",)


def test_an_older_copy_of_a_part_does_not_undo_a_newer_one() -> None:
    newer = fold(opening_of(PARTS), PARTS)
    older = part(1, ("a", "d"), updated_at=at(-100))
    older = replace(older, pm=replace(older.pm, targets=(TargetLine("a", "running"),)))

    again = fold(newer.pm, [older])

    assert {t.name: t.outcome for t in again.pm.targets}["a"] == "rolled back"


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (replace(PARTS[1], incident="INC-20261126-02"), "its incident is INC-20261126-02"),
        (
            replace(PARTS[1], pm=replace(PARTS[1].pm, migration="005_backfill")),
            "its migration is 005_backfill",
        ),
        (replace(PARTS[1], count=4), "its number of shards is 4"),
        (part(2, ("a",)), "target a is also in"),
        (part(1, ("x",)), "shard 1/3 is there twice"),
    ],
)
def test_parts_that_disagree_are_refused(other: Part, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_parts([PARTS[0], other], INCIDENT)
