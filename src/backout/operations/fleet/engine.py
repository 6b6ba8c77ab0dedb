"""The rollout engine: waves of targets, each wave with at most ``concurrency`` at once.

Pure of SQL and of files: it is given the waves and a ``work(target) -> TargetOutcome``
function. The work is network-bound, so it runs on threads. At the first failure no new target
starts: the ones running finish, the rest of the wave and every later wave are "not started".
A progress callback gets one line per wave.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Generic, TypeVar

from backout.errors import BackoutError, ExitCode

T = TypeVar("T")


class Status(StrEnum):
    """What happened on one target."""

    DONE = "done"
    EARLIER = "done earlier"
    """Done by an earlier run (a re-run continues where that one stopped)."""
    SKIPPED = "skipped"
    FAILED = "failed"
    NOT_STARTED = "not started"


@dataclass(frozen=True)
class TargetOutcome:
    """One target's outcome, with the one-line reason of a skip or a failure."""

    name: str
    status: Status
    reason: str = ""
    exit_code: int = ExitCode.OK
    seconds: float | None = None
    details: Mapping[str, object] = field(default_factory=dict)
    """What the work reports of it (the audit event, the backup folder, the schema check...)."""

    @property
    def failed(self) -> bool:
        return self.status is Status.FAILED


def failure(name: str, exc: BaseException) -> TargetOutcome:
    """The outcome of a target whose work raised ``exc``: its message and its exit code."""
    if isinstance(exc, BackoutError):
        return TargetOutcome(name, Status.FAILED, one_line(exc.message), int(exc.exit_code))
    what = f"internal error: {type(exc).__name__}: {exc}"
    return TargetOutcome(name, Status.FAILED, one_line(what), ExitCode.FAILED)


def one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class WaveReport:
    """One wave: its number (1 is the canary) and its targets' outcomes."""

    number: int
    of: int
    outcomes: tuple[TargetOutcome, ...]
    seconds: float


@dataclass(frozen=True)
class Rollout:
    """Every wave, every target's outcome in wave order, and the failures in the order they
    happened (the first decides the exit code)."""

    waves: tuple[WaveReport, ...]
    failures: tuple[TargetOutcome, ...] = ()

    @property
    def outcomes(self) -> tuple[TargetOutcome, ...]:
        return tuple(o for w in self.waves for o in w.outcomes)

    @property
    def exit_code(self) -> int:
        """0 when no target failed; otherwise the first failure's code."""
        return self.failures[0].exit_code if self.failures else ExitCode.OK

    def named(self, status: Status) -> tuple[str, ...]:
        return tuple(o.name for o in self.outcomes if o.status is status)


@dataclass(frozen=True)
class Engine(Generic[T]):
    """How a rollout runs: who the targets are called, how many at once, whether a failure
    stops it (a dry run goes on: it changes nothing), and where progress goes."""

    work: Callable[[T], TargetOutcome]
    name_of: Callable[[T], str]
    concurrency: int = 4
    stop_on_failure: bool = True
    progress: Callable[[str], None] = lambda _: None
    words: Mapping[Status, str] = field(default_factory=dict)
    """How the progress line calls each status (``DONE``: "rolled back")."""


def roll_out(engine: Engine[T], waves: Sequence[Sequence[T]]) -> Rollout:
    """Run ``waves`` one after the other; stop starting targets at the first failure."""
    reports: list[WaveReport] = []
    failures: list[TargetOutcome] = []
    with ThreadPoolExecutor(max_workers=max(1, engine.concurrency)) as pool:
        for number, wave in enumerate(waves, start=1):
            stopped = bool(failures) and engine.stop_on_failure
            started = time.monotonic()
            if stopped:
                outcomes = tuple(_not_started(engine, t) for t in wave)
            else:
                outcomes = _wave(engine, pool, wave, failures)
            report = WaveReport(number, len(waves), outcomes, time.monotonic() - started)
            reports.append(report)
            if not stopped:
                engine.progress(wave_line(report, engine.words))
    return Rollout(tuple(reports), tuple(failures))


def _wave(
    engine: Engine[T], pool: ThreadPoolExecutor, wave: Sequence[T], failures: list[TargetOutcome]
) -> tuple[TargetOutcome, ...]:
    """One wave: at most ``concurrency`` targets running; none started after a failure."""
    done: dict[int, TargetOutcome] = {}
    running: dict[Future[TargetOutcome], int] = {}
    waiting = list(range(len(wave)))
    while waiting or running:
        halted = engine.stop_on_failure and bool(failures)
        while waiting and not halted and len(running) < max(1, engine.concurrency):
            index = waiting.pop(0)
            running[pool.submit(_timed, engine, wave[index])] = index
        if not running:
            break
        finished, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in finished:
            outcome = future.result()
            done[running.pop(future)] = outcome
            if outcome.failed:
                failures.append(outcome)
    return tuple(done.get(i) or _not_started(engine, wave[i]) for i in range(len(wave)))


def _timed(engine: Engine[T], target: T) -> TargetOutcome:
    """The work on one target, timed; what it raises is its failure, never the rollout's."""
    started = time.monotonic()
    try:
        outcome = engine.work(target)
    except Exception as exc:
        outcome = failure(engine.name_of(target), exc)
    if outcome.seconds is None:
        outcome = replace(outcome, seconds=time.monotonic() - started)
    return outcome


def _not_started(engine: Engine[T], target: T) -> TargetOutcome:
    return TargetOutcome(engine.name_of(target), Status.NOT_STARTED)


def wave_line(report: WaveReport, words: Mapping[Status, str] | None = None) -> str:
    """``wave 2/3: 5 targets: 4 rolled back, 1 failed (3.2 s)``."""
    said = {**{s: s.value for s in Status}, **(words or {})}
    counts: dict[Status, int] = {}
    for outcome in report.outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    parts = ", ".join(f"{n} {said[s]}" for s in Status if (n := counts.get(s)))
    size = len(report.outcomes)
    canary = " (canary)" if report.number == 1 and report.of > 1 else ""
    return (
        f"wave {report.number}/{report.of}{canary}: {size} target{'' if size == 1 else 's'}: "
        f"{parts} ({report.seconds:.1f} s)"
    )
