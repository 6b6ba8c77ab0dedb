"""Review deadlines (wall clock and business hours, across daylight-saving changes), action
item due dates and deadlines in words."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from backout.postmortems.deadlines import ClockPolicy, action_item_due, in_words, review_due
from tests.postmortems.samples import NOW


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
