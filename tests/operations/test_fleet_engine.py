"""The rollout engine on its own: waves in order, bounded concurrency, the first failure stops
what has not started, and the progress lines. No database: the work is a Python function."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from backout.database.waits import BlockedError
from backout.errors import ExitCode, RefusedError
from backout.operations.fleet.engine import (
    Engine,
    Rollout,
    Status,
    TargetOutcome,
    WaveReport,
    roll_out,
    wave_line,
)

WAVES = (("t01",), ("t02", "t03"), ("t04", "t05", "t06", "t07"))


def done(name: str) -> TargetOutcome:
    return TargetOutcome(name, Status.DONE)


def engine(work: Callable[[str], TargetOutcome], **kwargs: object) -> Engine[str]:
    return Engine(work=work, name_of=lambda name: name, **kwargs)  # type: ignore[arg-type]


def statuses(rollout: Rollout) -> dict[str, str]:
    return {o.name: o.status.value for o in rollout.outcomes}


def test_every_target_runs_once_wave_after_wave_and_the_exit_code_is_0() -> None:
    started: list[str] = []
    finished: list[str] = []
    lock = threading.Lock()

    def work(name: str) -> TargetOutcome:
        with lock:
            started.append(name)
        with lock:
            finished.append(name)
        return done(name)

    rollout = roll_out(engine(work, concurrency=3), WAVES)

    assert sorted(started) == [f"t0{n}" for n in range(1, 8)]
    assert started[0] == "t01"
    assert set(started[1:3]) == {"t02", "t03"}  # a wave starts once the one before finished
    assert set(started[3:]) == {"t04", "t05", "t06", "t07"}
    assert rollout.exit_code == ExitCode.OK
    assert rollout.failures == ()
    assert [len(w.outcomes) for w in rollout.waves] == [1, 2, 4]
    assert set(statuses(rollout).values()) == {"done"}


def test_no_more_than_concurrency_targets_run_at_once() -> None:
    running, most = 0, 0
    lock = threading.Lock()
    together = threading.Barrier(2, timeout=10)  # two must run side by side to pass it

    def work(name: str) -> TargetOutcome:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        together.wait()
        with lock:
            running -= 1
        return done(name)

    roll_out(engine(work, concurrency=2), (("t01", "t02"), ("t03", "t04", "t05", "t06")))

    assert most == 2


def test_the_first_failure_stops_new_targets_and_sets_the_exit_code() -> None:
    def work(name: str) -> TargetOutcome:
        if name == "t02":
            raise BlockedError("rolling back 006 on t02", (), 3)
        return done(name)

    rollout = roll_out(engine(work, concurrency=1), WAVES)

    assert statuses(rollout) == {
        "t01": "done",
        "t02": "failed",
        "t03": "not started",
        "t04": "not started",
        "t05": "not started",
        "t06": "not started",
        "t07": "not started",
    }
    assert rollout.exit_code == ExitCode.LOCKED
    (failure,) = rollout.failures
    assert failure.name == "t02"
    assert failure.reason.startswith("rolling back 006 on t02: could not get its table locks")


def test_the_targets_already_running_finish_after_a_failure() -> None:
    failed = threading.Event()

    def work(name: str) -> TargetOutcome:
        if name == "t02":
            failed.set()
            raise RefusedError("refused here")
        if name == "t03":
            failed.wait(10)
            time.sleep(0.05)  # t02's failure is in before t03 finishes
        return done(name)

    rollout = roll_out(engine(work, concurrency=2), (("t01",), ("t02", "t03", "t04")))

    assert statuses(rollout) == {
        "t01": "done",
        "t02": "failed",
        "t03": "done",
        "t04": "not started",
    }
    assert rollout.exit_code == ExitCode.REFUSED


def test_an_unexpected_exception_is_that_target_s_failure_with_exit_1() -> None:
    def work(name: str) -> TargetOutcome:
        if name == "t01":
            raise ValueError("bad\nthing")
        return done(name)

    rollout = roll_out(engine(work), WAVES)

    (failure,) = rollout.failures
    assert failure.reason == "internal error: ValueError: bad thing"
    assert rollout.exit_code == ExitCode.FAILED
    assert rollout.named(Status.NOT_STARTED) == ("t02", "t03", "t04", "t05", "t06", "t07")


def test_without_stop_on_failure_every_target_runs_and_the_first_failure_decides() -> None:
    def work(name: str) -> TargetOutcome:
        if name in ("t03", "t05"):
            return TargetOutcome(name, Status.FAILED, "dry run failed", ExitCode.FAILED)
        return done(name)

    rollout = roll_out(engine(work, concurrency=1, stop_on_failure=False), WAVES)

    assert rollout.named(Status.FAILED) == ("t03", "t05")
    assert rollout.named(Status.NOT_STARTED) == ()
    assert [f.name for f in rollout.failures] == ["t03", "t05"]
    assert rollout.exit_code == ExitCode.FAILED


def test_progress_is_one_line_per_wave_that_ran() -> None:
    lines: list[str] = []

    def work(name: str) -> TargetOutcome:
        if name == "t03":
            return TargetOutcome(name, Status.FAILED, "no", ExitCode.LOCKED)
        return done(name)

    words = {Status.DONE: "rolled back"}
    roll_out(engine(work, concurrency=1, progress=lines.append, words=words), WAVES)

    assert [line.rsplit(" (", 1)[0] for line in lines] == [
        "wave 1/3 (canary): 1 target: 1 rolled back",
        "wave 2/3: 2 targets: 1 rolled back, 1 failed",
    ]


@pytest.mark.parametrize(
    ("outcomes", "line"),
    [
        ((done("a"),), "wave 1/1: 1 target: 1 done (3.2 s)"),
        (
            (done("a"), TargetOutcome("b", Status.NOT_STARTED), done("c")),
            "wave 1/1: 3 targets: 2 done, 1 not started (3.2 s)",
        ),
    ],
)
def test_a_wave_line_counts_each_outcome(outcomes: tuple[TargetOutcome, ...], line: str) -> None:
    assert wave_line(WaveReport(1, 1, outcomes, 3.21)) == line


def test_a_fleet_of_one_has_only_its_canary() -> None:
    rollout = roll_out(engine(done), (("t01",),))

    assert statuses(rollout) == {"t01": "done"}
