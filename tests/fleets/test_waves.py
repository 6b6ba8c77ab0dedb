"""Waves: the canary alone, then the sizes given, then what is left."""

from __future__ import annotations

import pytest

from backout.errors import UsageError
from backout.fleets.waves import parse_waves, plan_waves

FIFTY = [f"t{i:02d}" for i in range(50)]


def sizes(waves: tuple[tuple[str, ...], ...]) -> list[int]:
    return [len(w) for w in waves]


def test_the_default_is_a_canary_a_tenth_then_the_rest() -> None:
    waves = plan_waves(FIFTY, ("10%", "rest"))

    assert sizes(waves) == [1, 5, 44]
    assert [t for w in waves for t in w] == FIFTY


def test_counts_and_an_implicit_last_wave() -> None:
    assert sizes(plan_waves(FIFTY, ("4", "10"))) == [1, 4, 10, 35]


def test_small_fleets_have_no_empty_waves() -> None:
    assert sizes(plan_waves(["a"], ("10%", "rest"))) == [1]
    assert sizes(plan_waves(["a", "b"], ("10%", "rest"))) == [1, 1]
    assert plan_waves([], ("rest",)) == ()


def test_a_percentage_rounds_up() -> None:
    assert sizes(plan_waves(FIFTY[:20], ("1%", "rest"))) == [1, 1, 18]


@pytest.mark.parametrize("text", ["", "0", "ten", "150%", "10%,,x"])
def test_bad_waves_are_refused(text: str) -> None:
    with pytest.raises(UsageError):
        parse_waves(text)


def test_waves_parse_from_the_option() -> None:
    assert parse_waves(" 10% , REST ") == ("10%", "rest")
