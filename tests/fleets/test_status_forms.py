"""The fleet status table's forms, from states in memory: columns while they fit, each state's
targets below 50 targets, and from 50 on the majority as a count with only the others named."""

from __future__ import annotations

from pathlib import Path

from backout.cli.render_fleet_status import fleet_status_text
from backout.errors import ExitCode
from backout.operations.fleet.status import TargetRead, compare, exit_code
from backout.operations.status import MigrationStatus, State

FOLDER = Path("/project/migrations")


def shown(path: Path) -> str:
    return path.name


def read(name: str, *states: State) -> TargetRead:
    rows = tuple(
        MigrationStatus(f"00{n}", f"00{n}_m{n}", None, FOLDER, "schema_migrations", state)
        for n, state in enumerate(states, start=1)
    )
    return TargetRead(name, f"db/{name}", rows)


def fleet(count: int, differing: dict[int, State]) -> list[TargetRead]:
    """``count`` targets with 001 applied and 002 pending, but 002 in ``differing``'s state on
    the targets it numbers."""
    return [
        read(f"tenant-{n:03d}", State.APPLIED, differing.get(n, State.PENDING))
        for n in range(1, count + 1)
    ]


def test_past_the_width_each_state_lists_its_targets() -> None:
    result = compare("shop", None, fleet(12, {3: State.APPLIED, 7: State.DAMAGED}))

    assert fleet_status_text(result, shown).splitlines()[1:4] == [
        "migrations/",
        "  001_m1  applied on all 12",
        "  002_m2  pending: tenant-001, tenant-002, tenant-004, tenant-005, tenant-006, "
        "tenant-008, tenant-009, tenant-010, tenant-011, tenant-012 · applied: tenant-003 · "
        "damaged: tenant-007",
    ]
    assert exit_code(result, check=False) is ExitCode.PROBLEMS


def test_from_50_targets_the_majority_is_a_count_and_only_the_others_are_named() -> None:
    result = compare("shop", (1, 2), fleet(60, {3: State.APPLIED, 42: State.APPLIED}))

    assert fleet_status_text(result, shown).splitlines() == [
        "fleet shop (shard 1/2): 60 targets",
        "migrations/",
        "  001_m1  applied on all 60",
        "  002_m2  pending on 58 · applied on 2: tenant-003, tenant-042",
        "",
        "2 of 60 targets differ from the majority: tenant-003 (002_m2 applied), "
        "tenant-042 (002_m2 applied).",
    ]


def test_a_tie_goes_to_the_state_of_the_target_listed_first() -> None:
    result = compare("pair", None, [read("b", State.PENDING), read("a", State.APPLIED)])

    assert result.rows[0].majority is State.PENDING
    assert list(result.differing) == ["a"]


def test_a_target_not_read_fails_the_run_even_when_the_others_agree() -> None:
    down = TargetRead("down", "db/down", error="cannot connect")
    result = compare("shop", None, [read("a", State.APPLIED), down])

    assert result.agree
    assert exit_code(result, check=True) is ExitCode.FAILED


def test_when_no_target_answers_the_table_says_so() -> None:
    result = compare("shop", None, [TargetRead("down", "h:1/db", error="cannot connect")])

    assert fleet_status_text(result, shown).splitlines() == [
        "fleet shop: 1 target",
        "",
        "not read (1):",
        "  down at h:1/db: cannot connect",
        "",
        "No target could be read.",
    ]
