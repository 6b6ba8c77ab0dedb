"""``backout postmortems digest``: the week's counts, what is overdue and what falls due."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from backout.postmortems.collection import Record, parse
from backout.postmortems.digest import digest, markdown
from tests.postmortems.samples import NOW, iso, postmortem, record


def test_digest_counts_the_period_and_lists_overdue_and_due_soon() -> None:
    late = record(review_due=iso(NOW - timedelta(hours=3)))
    soon = parse(
        postmortem("INC-20261124-02", review_due=iso(NOW + timedelta(days=2))), Path("b.md"), None
    )
    assert isinstance(soon, Record)

    d = digest([late, soon], NOW - timedelta(days=7), NOW)

    assert [r.pm.id for r in d.overdue] == ["INC-20261124-01"]
    assert [r.pm.id for r in d.due_soon] == ["INC-20261124-02"]
    assert len(d.opened) == 2
    text = markdown(d)
    assert "review overdue by 3 h" in text
    assert text.startswith("# Postmortems: 2026-11-17 to 2026-11-24")
