"""``backout postmortems check``: the CI gate over the postmortems. Pure: records in, findings out.

The findings are lint's (:class:`backout.migrations.lint.Finding`), so they print as text, JSON or
GitHub annotations the same way. ``CHECKS`` documents every rule; the README's table is checked
against it by the tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from backout.migrations.lint import Finding, Report, Severity
from backout.postmortems.collection import Broken, Collection, Record
from backout.postmortems.deadlines import in_words
from backout.postmortems.model import ActionItem

REQUIRED = ("id", "title", "status", "severity", "owner")
SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")
PLACEHOLDER = "TODO"
DONE_WRITING = ("reviewed", "published", "closed")


@dataclass(frozen=True)
class Check:
    id: str
    severity: Severity
    summary: str


CHECKS: Mapping[str, Check] = {
    c.id: c
    for c in (
        Check(
            "pm-front-matter",
            Severity.ERROR,
            "the front matter is not valid YAML or the file cannot be read",
        ),
        Check("pm-duplicate-id", Severity.ERROR, "two postmortems share an id"),
        Check(
            "pm-missing-field",
            Severity.ERROR,
            "`id`, `title`, `status`, `severity` or `owner` is missing",
        ),
        Check(
            "pm-invalid-value",
            Severity.ERROR,
            "an unknown status or severity, a time or a date that does not parse",
        ),
        Check(
            "pm-placeholder",
            Severity.ERROR,
            "a `TODO` left in a postmortem marked reviewed or later",
        ),
        Check(
            "pm-action-item",
            Severity.ERROR,
            "an open action item without an owner or a due date, or one moved without a link",
        ),
        Check(
            "pm-not-required-reason",
            Severity.ERROR,
            "`not_required` without a reason in its history",
        ),
        Check(
            "pm-review-overdue",
            Severity.ERROR,
            "the review deadline passed before the postmortem was reviewed",
        ),
        Check(
            "pm-incomplete",
            Severity.ERROR,
            "the emergency stopped before its last step (a re-run of it finishes the incident)",
        ),
        Check(
            "pm-no-deadline", Severity.WARNING, "a postmortem awaiting review has no `review_due`"
        ),
        Check("pm-action-overdue", Severity.WARNING, "an open action item is past its due date"),
    )
}


def check(collection: Collection, now: datetime) -> Report:
    """Every finding over ``collection`` at ``now``, by file and line."""
    findings: list[Finding] = [_broken(b) for b in collection.broken]
    counts = Counter(r.pm.id for r in collection.records)
    for record in collection.records:
        findings += list(_check_record(record, now))
        if counts[record.pm.id] > 1:
            others = [
                _where(o) for o in collection.records if o.pm.id == record.pm.id and o is not record
            ]
            findings.append(
                _finding(
                    "pm-duplicate-id",
                    record,
                    1,
                    f"id {record.pm.id} is also used by "
                    f"{', '.join(others)}: give each incident its own id",
                )
            )
    findings.sort(key=lambda f: (str(f.file), f.line, f.rule))
    return Report(len(collection.records) + len(collection.broken), findings)


def _check_record(r: Record, now: datetime) -> Iterator[Finding]:
    yield from _fields(r)
    yield from _placeholder(r)
    for number, item in enumerate(r.pm.action_items, start=1):
        yield from _action_item(r, number, item, now)
    yield from _review(r, now)


def _fields(r: Record) -> Iterator[Finding]:
    # Missing keys are looked up in the front matter as written: the model fills in defaults.
    for key in REQUIRED:
        if not r.front.get(key):
            yield _finding(
                "pm-missing-field", r, 2, f"`{key}` is missing: add it to the front matter"
            )
    for line, message in r.problems:
        yield _finding("pm-invalid-value", r, line, message)
    severity = r.pm.severity
    if severity and severity not in SEVERITIES:
        yield _finding(
            "pm-invalid-value",
            r,
            2,
            f"unknown severity {severity!r}: one of {', '.join(SEVERITIES)}",
        )


def _placeholder(r: Record) -> Iterator[Finding]:
    if r.pm.status in DONE_WRITING and PLACEHOLDER in r.body:
        line = _body_line(r, PLACEHOLDER)
        yield _finding(
            "pm-placeholder",
            r,
            line,
            f"a {PLACEHOLDER} is left in a postmortem marked {r.pm.status}: write that section",
        )


def _action_item(r: Record, number: int, item: ActionItem, now: datetime) -> Iterator[Finding]:
    what = f"action item {number} ({item.title or 'untitled'})"
    if item.status == "moved" and not item.link:
        yield _finding("pm-action-item", r, 2, f"{what} is moved but has no `link`")
    elif item.is_open and (not item.owner or item.due is None):
        missing = " and ".join(
            name
            for name, value in (("an owner", item.owner), ("a due date", item.due))
            if not value
        )
        yield _finding("pm-action-item", r, 2, f"{what} has no {missing}")
    if item.overdue(now.date()) and item.due is not None:
        yield _finding(
            "pm-action-overdue",
            r,
            2,
            f"{what}, owned by {item.owner or 'nobody'}, was due {item.due.isoformat()}",
        )


def _review(r: Record, now: datetime) -> Iterator[Finding]:
    pm = r.pm
    if pm.status == "not_required" and not any(
        h.get("status") == "not_required" and h.get("reason") for h in pm.history
    ):
        yield _finding(
            "pm-not-required-reason",
            r,
            2,
            "marked not_required without a reason: "
            "use `backout postmortems set-status ID not_required --reason TEXT`",
        )
    if pm.review_pending and pm.steps_pending:
        yield _finding(
            "pm-incomplete",
            r,
            2,
            f"the emergency stopped before '{pm.steps_pending[0]}': run "
            f"`backout emergency {pm.migration or 'MIGRATION'}` again to finish the incident",
        )
    # "rolled back" is the key being filled in, whatever its value says.
    if pm.review_pending and pm.review_due is None and r.front.get("rolled_back_at"):
        yield _finding("pm-no-deadline", r, 2, "awaiting review with no `review_due`")
    if pm.review_overdue(now) and pm.review_due is not None:
        yield _finding(
            "pm-review-overdue",
            r,
            2,
            f"review {in_words(pm.review_due - now)} "
            f"(due {pm.review_due:%Y-%m-%d %H:%M} UTC, owner {pm.owner or 'nobody'}): "
            "hold the review, then `set-status ID reviewed`",
        )


def _finding(rule: str, r: Record, line: int, message: str) -> Finding:
    where = f" (on branch {r.branch})" if r.branch else ""
    return Finding(rule, CHECKS[rule].severity, r.path, line, f"{r.pm.id}: {message}{where}")


def _broken(b: Broken) -> Finding:
    where = f" (on branch {b.branch})" if b.branch else ""
    return Finding("pm-front-matter", Severity.ERROR, b.path, b.line, b.message + where)


def _where(r: Record) -> str:
    return f"{r.path.name}" + (f" on {r.branch}" if r.branch else "")


def _body_line(r: Record, needle: str) -> int:
    """The file line of the first ``needle`` in the body."""
    return r.body_line + r.body[: r.body.find(needle)].count("\n")
