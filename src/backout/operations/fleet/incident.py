"""A fleet emergency's one incident: one postmortem, written by one writer under a lock.

The targets' threads never touch the postmortem themselves: each holds a
:class:`TargetIncident`, a view of the incident that prefixes its timeline entries with the
target's name and records its backup and schema check on the target's line of the Targets
table. Every change goes through :class:`FleetIncident`, which applies it and writes the file
under one lock, so entries from concurrent targets never overwrite one another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from backout.operations.emergency.incident import Incident
from backout.postmortems.model import Postmortem, TargetLine


class FleetIncident:
    """The writer: the incident's postmortem, changed under one lock by any thread, and
    written by one thread of its own at most every ``interval`` seconds (rewriting the whole
    file at every entry of every target would cost more than the rollbacks), then once more
    when the rollout ends. Use it as a context manager around the rollout."""

    def __init__(self, incident: Incident, interval: float = 0.5) -> None:
        self.incident = incident
        self.interval = interval
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        self._dirty = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write_now_and_then, daemon=True)

    def __enter__(self) -> FleetIncident:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.flush()

    @property
    def pm(self) -> Postmortem:
        with self._lock:
            return self.incident.pm

    def change(self, how: Callable[[Postmortem], Postmortem]) -> None:
        """``how`` applied to the postmortem under the lock; written with the next flush."""
        with self._lock:
            self.incident.pm = how(self.incident.pm)
            self._dirty = True

    def flush(self) -> None:
        """The postmortem written, if it changed since it last was."""
        with self._writing:  # one write at a time, in the order of the snapshots
            with self._lock:
                if not self._dirty:
                    return
                pm, self._dirty = self.incident.pm, False
            self.incident.write(pm)

    def _write_now_and_then(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def note(self, at: datetime, text: str) -> None:
        """An entry of the incident's own (a shard's starts with its slice)."""
        self.change(lambda pm: pm.with_entry(at, self.incident.label + text))

    def target_note(self, at: datetime, name: str, text: str) -> None:
        """An entry of one target's, starting with its name."""
        self.change(lambda pm: pm.with_entry(at, f"{name}: {text}"))

    def line(self, name: str) -> TargetLine | None:
        return next((t for t in self.pm.targets if t.name == name), None)

    def update_line(self, name: str, **fields: object) -> None:
        """The target's line with ``fields`` changed (made if it has none)."""

        def how(pm: Postmortem) -> Postmortem:
            line = next((t for t in pm.targets if t.name == name), TargetLine(name, "pending"))
            return pm.with_target(replace(line, **fields))  # type: ignore[arg-type]

        self.change(how)

    def view(self, name: str) -> TargetIncident:
        """The incident as one target's run sees it."""
        incident = self.incident
        return TargetIncident(
            incident.pm, incident.path, incident.templates, writer=self, name=name
        )


@dataclass
class TargetIncident(Incident):
    """One target's view of the fleet's incident: what its steps note goes to the one
    timeline, prefixed with its name; its backup and schema check go on its line of the
    Targets table. Its ``pm`` is the incident as the target's run began (its id and waiver)."""

    writer: FleetIncident | None = field(default=None, repr=False)
    name: str = ""

    def _writer(self) -> FleetIncident:
        assert self.writer is not None, "a target's view always has its writer"
        return self.writer

    def note(self, at: datetime, text: str) -> None:
        self._writer().target_note(at, self.name, text)

    def save(self) -> None:
        """Nothing of its own to write: every change went through the writer."""

    def pending(self, steps: tuple[str, ...]) -> None:
        """A target's steps are not the incident's: the writer records what is left."""

    def record_backup(self, where: str) -> None:
        self._writer().update_line(self.name, backup=where)

    def record_schema_check(self, check: str) -> None:
        self._writer().update_line(self.name, detail=f"schema check: {check}")
