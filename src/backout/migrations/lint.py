"""Lint rules over migration files, one at a time and as a set. Pure: parsed files in, findings out.

Each finding has a rule id, a severity, a file, a line and a message that says how to fix it.
``RULES`` documents every rule; the README's table is checked against it by the tests.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol

from backout.cache import ReadCache, digest
from backout.config import CACHE_FOLDER, Settings
from backout.errors import MalformedMigrationError
from backout.migrations.catalog import (
    Entry,
    entries_for_paths,
    listing_once,
    map_entries,
    neighbours,
    project_catalog,
)
from backout.migrations.file import NAME_PATTERN, REQUIRED_HEADER, STUB_MARKER, MigrationFile
from backout.migrations.formats.strategy import orphans_in
from backout.migrations.ignores import ignored_lines
from backout.migrations.lock_safety import (
    Hazard,
    hazards,
    index_tables,
    parsed,
    shares_transaction,
)
from backout.migrations.statements import Flag, Problem, Statement


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    file: Path
    line: int
    message: str


class Versioned(Protocol):
    """What the checks over a set of migrations look at: a catalog entry or a parsed file."""

    @property
    def path(self) -> Path: ...
    @property
    def folder(self) -> Path: ...
    @property
    def version(self) -> str | None: ...
    @property
    def number(self) -> int | None: ...
    @property
    def format(self) -> str: ...


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    summary: str


RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("unreadable", Severity.ERROR, "the file is not UTF-8 text or cannot be read"),
        Rule("name-format", Severity.ERROR, "file name is not <NNN>_<snake_case>.sql"),
        Rule("duplicate-version", Severity.ERROR, "two migrations share a version in a folder"),
        Rule(
            "duplicate-version-across-folders",
            Severity.WARNING,
            "the same version in two folders (refer to them by path)",
        ),
        Rule("version-gap", Severity.WARNING, "a version is skipped in the sequence"),
        Rule("header-missing", Severity.ERROR, "a required header field is missing"),
        Rule("header-mismatch", Severity.WARNING, "`-- Migration:` does not name the file"),
        Rule("header-placeholder", Severity.WARNING, "a header field still says TODO"),
        Rule("forward-empty", Severity.ERROR, "the migration has no SQL statement"),
        Rule("unfinished-stub", Severity.ERROR, "a fix-forward stub not written yet"),
        Rule(
            "committed-migration-edited",
            Severity.ERROR,
            "a migration the main branch holds was changed or deleted (`backout guard`)",
        ),
        Rule("sql-syntax", Severity.ERROR, "PostgreSQL's parser rejects the SQL"),
        Rule("psql-meta-command", Severity.ERROR, "a psql meta-command such as \\i or \\set"),
        Rule("rollback-missing", Severity.ERROR, "no ROLLBACK section, or one with no SQL"),
        Rule("rollback-unparseable", Severity.ERROR, "rollback text is neither SQL nor a note"),
        Rule("rollback-unterminated", Severity.ERROR, "rollback SQL without its ';'"),
        Rule("rollback-uncommented", Severity.ERROR, "SQL after the ROLLBACK heading would run"),
        Rule(
            "rollback-double-comment",
            Severity.ERROR,
            "a rollback line commented out twice (`-- -- ...`): a step switched off or left out",
        ),
        Rule(
            "rollback-outside-section",
            Severity.ERROR,
            "rollback SQL backout would not run: after a heading that ends the section, or in a "
            "remark that disagrees with the rollback",
        ),
        Rule(
            "orphan-rollback",
            Severity.ERROR,
            "a rollback script named after no migration, or one its migration does not use",
        ),
        Rule(
            "rollback-data-loss",
            Severity.ERROR,
            "the rollback destroys data without a WARNING or backup note",
        ),
        Rule(
            "forward-data-loss",
            Severity.ERROR,
            "a destructive change without a documented data-preservation note",
        ),
        Rule("non-transactional", Severity.WARNING, "a statement that cannot run in a transaction"),
        Rule(
            "transaction-control",
            Severity.ERROR,
            "COMMIT, ROLLBACK, SAVEPOINT... in a section (only one BEGIN ... COMMIT around it)",
        ),
        Rule(
            "format-mismatch",
            Severity.ERROR,
            "another tool's marker (`-- +goose Down`...) in a folder read in a different format",
        ),
        Rule(
            "lock-timeout",
            Severity.WARNING,
            "ACCESS EXCLUSIVE on an existing table with no lock_timeout, where backout's does not "
            "apply",
        ),
        Rule(
            "index-not-concurrent",
            Severity.WARNING,
            "CREATE INDEX or DROP INDEX without CONCURRENTLY on an existing table",
        ),
        Rule("rewrite-column-type", Severity.WARNING, "a column type change that rewrites a table"),
        Rule(
            "volatile-default",
            Severity.WARNING,
            "ADD COLUMN with a volatile default (serial, identity, random()...): a table rewrite",
        ),
        Rule(
            "scan-under-lock",
            Severity.WARNING,
            "SET NOT NULL, or ADD CONSTRAINT without NOT VALID: a full scan under lock",
        ),
        Rule(
            "enum-value-in-transaction",
            Severity.WARNING,
            "ALTER TYPE ... ADD VALUE in a transaction with other statements",
        ),
        Rule("rename", Severity.WARNING, "a table or column renamed: running code breaks"),
    )
}
SEQUENCE_LIMIT = 10**6
"""Versions below this are a sequence (``007``) where a gap means something; timestamps are not."""

_WARNING_NOTE = re.compile(r"\b(warning|back ?up|data loss|lose|lost|irreversible)", re.I)
_PRESERVATION_NOTE = re.compile(
    r"\b(back ?up|preserv|data loss|archiv|snapshot|restor|copied|irreversible)", re.I
)
IRREVERSIBLE = re.compile(r"\b(irreversible|cannot be (rolled back|undone)|no rollback)", re.I)
_PLACEHOLDER = re.compile(r"^(todo|tbd|fixme|<.*>)$", re.I)


@dataclass(frozen=True)
class LintOptions:
    """What the project's settings change in lint."""

    lock_timeout_required_in: frozenset[Path] = frozenset()
    """The folders whose SQL must set ``lock_timeout`` itself: run by another tool, or
    ``lint_lock_timeout = "required"`` (see :func:`options_for`)."""
    lock_safety: bool = True
    """Whether to run the lock-safety rules at all (``apply``'s refusals do not need them)."""


def options_for(settings: Settings) -> LintOptions:
    """``lint_lock_timeout = "backout"`` (the default): backout runs every section with its own
    ``lock_timeout``, so only folders whose ``history`` is another tool's (that tool runs the
    SQL) must set it; ``"required"``: every folder must (the SQL is also run by psql...)."""
    required = [
        folder
        for folder in settings.migrations
        if settings.lint_lock_timeout == "required"
        or settings.histories.get(folder, "backout") != "backout"
    ]
    return LintOptions(lock_timeout_required_in=frozenset(required))


def finding(rule: str, file: Path, line: int, message: str) -> Finding:
    return Finding(rule, RULES[rule].severity, file, line, message)


def lint(migrations: Sequence[MigrationFile], options: LintOptions | None = None) -> list[Finding]:
    """Every finding for ``migrations``, checked one by one and as a set, in file order."""
    findings = [f for m in migrations for f in lint_file(m, options)]
    findings.extend(f for check in SET_CHECKS for f in check(migrations))
    return sorted(findings, key=_order)


def lint_file(m: MigrationFile, options: LintOptions | None = None) -> list[Finding]:
    """The findings of the checks that look at one file alone.

    A rule the file's reader already reported, in its format's words (``no 3_x.down.sql``), is
    not reported again by the generic check; a file its reader says is no migration (a
    ``name-format`` problem and no version: a Flyway repeatable...) gets that finding alone.
    """
    if m.version is None and any(p.code == "name-format" for p in m.problems):
        return list(check_problems(m))
    told = {p.code for p in m.all_problems}
    options = options or LintOptions()
    found = [
        f
        for check in FILE_CHECKS
        for f in check(m)
        if check is check_problems or f.rule not in told
    ]
    if options.lock_safety:
        found.extend(check_lock_safety(m, options))
    return found


@dataclass(frozen=True)
class Report:
    """What ``backout lint`` checked and found."""

    files: int
    findings: list[Finding]

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> int:
        return len(self.findings) - self.errors


def lint_entries(
    entries: Sequence[Entry],
    neighbours: Sequence[Entry] = (),
    options: LintOptions | None = None,
    cache: Path | None = None,
) -> Report:
    """Read and lint ``entries``; a file backout cannot read at all is a finding, not a crash.

    The checks over the set (duplicate versions, gaps) also see ``neighbours``, the other
    migrations of the same folders, but only findings about ``entries`` are reported. Files are
    read and checked in worker processes when there are many (:func:`map_entries`); the checks
    over the set need only their names. With ``cache`` (a file), each file's findings are kept
    there for the next run (:func:`_per_file`).
    """
    findings = _per_file(entries, options or LintOptions(), cache)
    chosen = {e.path for e in entries}
    everything = [*entries, *(e for e in neighbours if e.path not in chosen)]
    folders, known = {e.folder for e in entries}, {e.path for e in everything}
    findings.extend(
        f
        for check in SET_CHECKS
        for f in check(everything)
        if f.file in chosen or (f.file.parent in folders and f.file not in known)
    )
    # files, not migrations: a Liquibase file holds several changesets
    return Report(files=len(chosen), findings=sorted(findings, key=_order))


def lint_project(settings: Settings, paths: Sequence[Path] = ()) -> Report:
    """``backout lint``: the named files and folders, or every configured folder."""
    catalog = project_catalog(settings, must_exist=not paths)
    options = options_for(settings)
    cache = settings.root / CACHE_FOLDER / "lint.json"
    if not paths:
        return lint_entries(catalog.entries, options=options, cache=cache)
    with listing_once():  # a folder named is listed for the files and again for neighbours
        chosen = entries_for_paths(catalog, paths)
        around = neighbours(chosen)
    return lint_entries(chosen, around, options, cache)


def _per_file(entries: Sequence[Entry], options: LintOptions, cache: Path | None) -> list[Finding]:
    """The findings of :func:`lint_file` for each entry, those of unchanged files from ``cache``.

    An entry's key is a digest of backout's version (in the cache), the lint options, the
    entry (path, name, version, format, other files) and the bytes of every file it reads: any
    change to one of them lints the file again. Only the misses are read, in worker processes
    when there are many; the findings are the same with or without the cache.
    """
    kept = ReadCache(cache)
    keys = [_cache_key(e, options) for e in entries] if cache is not None else []
    found: dict[int, list[Finding]] = {}
    for n, key in enumerate(keys):
        entry = kept.get(key)
        if entry is not None:
            found[n] = [_finding_from(row) for row in entry["findings"]]
    missed = [n for n in range(len(entries)) if n not in found]
    read_and_lint = partial(_read_and_lint, options=options)
    results = map_entries(read_and_lint, [entries[n] for n in missed])
    for n, findings in zip(missed, results, strict=True):
        found[n] = findings
        if keys:
            kept.put(keys[n], {"findings": [_finding_row(f) for f in findings]})
    kept.save()
    return [f for n in range(len(entries)) for f in found[n]]


def _cache_key(entry: Entry, options: LintOptions) -> str:
    setting = sorted(str(p) for p in options.lock_timeout_required_in)
    about = repr((setting, options.lock_safety, str(entry.path), str(entry.folder), entry.name))
    about += repr((entry.version, entry.format, [str(p) for p in entry.others]))
    return digest(about, *(_bytes(p) for p in (entry.path, *entry.others)))


def _bytes(path: Path) -> bytes:
    try:
        return b"+" + path.read_bytes()
    except OSError as exc:  # unreadable or gone: keyed by why, so it is read (and found) again
        return f"-{type(exc).__name__}".encode()


def _finding_row(f: Finding) -> list[object]:
    return [f.rule, f.severity.value, str(f.file), f.line, f.message]


def _finding_from(row: list[Any]) -> Finding:
    rule, severity, file, line, message = row
    return Finding(rule, Severity(severity), Path(file), line, message)


def _read_and_lint(entry: Entry, options: LintOptions) -> list[Finding]:
    try:
        migration = entry.read()
    except MalformedMigrationError as exc:
        return [finding("unreadable", exc.path, exc.line or 1, exc.reason)]
    return lint_file(migration, options)


def _order(f: Finding) -> tuple[str, int, str]:
    return (str(f.file), f.line, f.rule)


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)


def check_name(m: MigrationFile) -> Iterator[Finding]:
    if m.format == "strategy" and not NAME_PATTERN.match(m.path.name):
        yield finding(
            "name-format",
            m.path,
            1,
            f"{m.path.name} does not follow <version>_<description>.sql (three-digit version, "
            "snake_case description, e.g. 007_add_widgets.sql); rename it before it is applied",
        )


def check_header(m: MigrationFile) -> Iterator[Finding]:
    if m.format != "strategy":
        return
    for key in REQUIRED_HEADER:
        value = m.header_value(key)
        if value is None:
            yield finding(
                "header-missing",
                m.path,
                1,
                f"the header has no `-- {key}:` line; add it to the comment block at the top",
            )
        elif _PLACEHOLDER.match(value):
            yield finding(
                "header-placeholder",
                m.path,
                m.header_line(key),
                f"`-- {key}:` says {value!r}; fill it in",
            )
    named = m.header_value("Migration")
    if named is not None and named.removesuffix(".sql") != m.name:
        yield finding(
            "header-mismatch",
            m.path,
            m.header_line("Migration"),
            f"`-- Migration: {named}` does not match the file name {m.path.name}; make them agree",
        )


def check_problems(m: MigrationFile) -> Iterator[Finding]:
    """What parsing found: syntax errors, meta-commands, unreadable rollback text, transaction
    control."""
    for problem in m.all_problems:
        yield _problem_finding(m, problem)


def _problem_finding(m: MigrationFile, problem: Problem) -> Finding:
    in_sibling = problem in m.rollback.problems and m.rollback.path not in (None, m.path)
    file = m.rollback.path if in_sibling and m.rollback.path else m.path
    return finding(problem.code, file, problem.line, problem.message)


def check_stub(m: MigrationFile) -> Iterator[Finding]:
    if m.is_stub:
        yield finding(
            "unfinished-stub",
            m.path,
            1,
            f"this fix-forward stub still holds its `-- {STUB_MARKER}` placeholder: write the "
            "corrected change and its ROLLBACK section, then delete that line",
        )


def check_forward(m: MigrationFile) -> Iterator[Finding]:
    if not m.statements and not any(p.code == "sql-syntax" for p in m.problems):
        yield finding(
            "forward-empty", m.path, 1, "no SQL statement to apply; write the migration's SQL"
        )
    added = {column for s in m.statements for column in s.added_columns}
    destructive = [
        s for s in m.statements if s.has(Flag.DESTROYS_DATA) and not _fills_new_columns(s, added)
    ]
    if destructive and any(_PRESERVATION_NOTE.search(c) for c in m.comments):
        destructive = []
    for statement in destructive:
        yield finding(
            "forward-data-loss",
            m.path,
            statement.line,
            f"{_losses(statement)} changes or destroys existing data and the file documents "
            "no data-preservation strategy; add a comment such as `-- Data preservation: "
            "<backup, copy table or reversible backfill>` (strategy rule 3)",
        )
    yield from _flag_findings(m.path, m.statements)


def check_rollback(m: MigrationFile) -> Iterator[Finding]:
    rollback = m.rollback
    file = rollback.path or m.path
    if not rollback.found:
        how = " ".join(rollback.notes) or (  # a format's notes say what to write, and where
            "add the commented ROLLBACK block at the end of the file "
            f"(or a {m.name}.rollback.sql beside it) with the SQL that undoes this migration"
        )
        yield finding("rollback-missing", m.path, rollback.line or 1, f"no ROLLBACK section: {how}")
        return
    if not rollback.statements and not rollback.problems:
        if any(IRREVERSIBLE.search(note) for note in rollback.notes):
            return  # documented as irreversible: said, not forgotten
        yield finding(
            "rollback-missing",
            file,
            rollback.line or 1,
            "the ROLLBACK section holds no SQL statement: add the statements that undo this "
            "migration as `--   <sql>;` lines, or say why it is irreversible",
        )
    warned = any(_WARNING_NOTE.search(note) for note in rollback.notes)
    for statement in rollback.statements:
        if statement.has(Flag.DESTROYS_DATA) and not warned:
            yield finding(
                "rollback-data-loss",
                file,
                statement.line,
                f"the rollback runs {_losses(statement)} but the section has no WARNING or backup "
                "note; add e.g. `-- WARNING: This will delete all <what> data. Backup before "
                "rollback.`",
            )
    yield from _flag_findings(file, rollback.statements)


def _flag_findings(file: Path, statements: Sequence[Statement]) -> Iterator[Finding]:
    for statement in statements:
        if statement.has(Flag.NON_TRANSACTIONAL):
            yield finding(
                "non-transactional",
                file,
                statement.line,
                f"{statement.non_transactional_reason} cannot run inside a transaction: backout "
                "runs it on its own, so a failure can leave a half-done change; keep it in a "
                "migration of its own",
            )


REFUSED_BY_APPLY = frozenset(
    {
        "name-format",
        "forward-empty",
        "sql-syntax",
        "psql-meta-command",
        "transaction-control",
        "rollback-unparseable",
        "rollback-unterminated",
        "rollback-uncommented",
        "rollback-double-comment",
        "rollback-outside-section",
        "format-mismatch",
    }
)
"""The lint errors ``apply`` refuses a migration for: a bad name, nothing (or nothing PostgreSQL
accepts) to run, transaction control, a rollback section it could not run. Policy errors (a
missing rollback, header or data-loss note) stay lint's business."""


def refusals(m: MigrationFile, *, forward: bool) -> list[Finding]:
    """Why running ``m`` cannot be right, in lint's words: for ``apply`` (``forward``) the
    findings in :data:`REFUSED_BY_APPLY`; for a rollback, its rollback section's problems."""
    if not forward:
        mismatched = [p for p in m.problems if p.code == "format-mismatch"]
        return [_problem_finding(m, p) for p in (*mismatched, *m.rollback.problems)]
    found = lint_file(m, LintOptions(lock_safety=False))
    return [f for f in found if f.rule in REFUSED_BY_APPLY]


def require_runnable(m: MigrationFile, *, forward: bool) -> None:
    """Raise :class:`MalformedMigrationError` for the first of :func:`refusals`, naming the file
    and the line: what every command that runs ``m``'s SQL refuses before running anything."""
    refused = refusals(m, forward=forward)
    if refused:
        first = refused[0]
        raise MalformedMigrationError(
            first.file, f"{first.rule}: {first.message} (run `backout lint`)", line=first.line
        )


def check_lock_safety(m: MigrationFile, options: LintOptions) -> Iterator[Finding]:
    """The lock-safety rules (:mod:`~backout.migrations.lock_safety`), forward and rollback,
    less what a ``-- backout:ignore <rule>`` comment switches off."""
    required = m.folder in options.lock_timeout_required_in
    forward = parsed(m.statements)
    rollback = m.rollback
    file = rollback.path or m.path
    lines = {m.path: [s.line for s in m.statements]}
    lines.setdefault(file, []).extend(s.line for s in rollback.statements)
    shared = shares_transaction(m.statements, transactional=not m.no_transaction)
    found = hazards(forward, shared=shared, require_timeout=required)
    yield from _unless_ignored(m, m.path, lines[m.path], found)
    if not rollback.statements:
        return
    found = hazards(
        parsed(rollback.statements),
        shared=shares_transaction(rollback.statements, transactional=not rollback.no_transaction),
        require_timeout=required,
        indexes=index_tables(forward),
    )
    yield from _unless_ignored(m, file, lines[file], found, "(rollback) ")


def _unless_ignored(
    m: MigrationFile, file: Path, lines: Sequence[int], found: Iterable[Hazard], prefix: str = ""
) -> Iterator[Finding]:
    """Findings for the hazards in ``file`` (whose statements start on ``lines``) that no
    ``-- backout:ignore`` comment switches off."""
    for hazard in found:
        ignored = ignored_lines(m.ignores, file, lines, hazard.rule) if m.ignores else frozenset()
        if ignored is not None and hazard.line not in ignored:
            yield finding(hazard.rule, file, hazard.line, prefix + hazard.message)


def check_versions(migrations: Sequence[Versioned]) -> Iterator[Finding]:
    by_folder: dict[Path, list[Versioned]] = defaultdict(list)
    for m in migrations:
        if m.number is not None:
            by_folder[m.folder].append(m)
    seen: dict[int, list[Versioned]] = defaultdict(list)
    for folder_migrations in by_folder.values():
        by_number: dict[int, list[Versioned]] = defaultdict(list)
        for m in folder_migrations:
            by_number[m.number or 0].append(m)
        for number, group in sorted(by_number.items()):
            for m in group[1:]:
                others = ", ".join(o.path.name for o in group if o is not m)
                yield finding(
                    "duplicate-version",
                    m.path,
                    1,
                    f"version {m.version} is also used by {others}; renumber the newer one",
                )
            seen[number].append(group[0])
        numbers = sorted(by_number)
        for before, after in pairwise(numbers):
            if after - before > 1 and after < SEQUENCE_LIMIT:
                m = by_number[after][0]
                yield finding(
                    "version-gap",
                    m.path,
                    1,
                    f"versions {before + 1:03d}..{after - 1:03d} are missing before {m.path.name}"
                    "; renumber, or ignore this if they were removed on purpose",
                )
    for group in seen.values():
        folders = {m.folder for m in group}
        if len(folders) > 1:
            for m in group[1:]:
                yield finding(
                    "duplicate-version-across-folders",
                    m.path,
                    1,
                    f"version {m.version} also exists in {group[0].folder.name}/ "
                    f"({group[0].path.name}); name these migrations by path",
                )


def check_orphan_rollbacks(migrations: Sequence[Versioned]) -> Iterator[Finding]:
    """Rollback scripts in a strategy folder named after none of its migrations: no command
    would ever run them, and they are not applied as migrations either."""
    folders = dict.fromkeys(m.folder for m in migrations if m.format == "strategy")
    for folder in folders:
        for path in orphans_in(folder):
            yield finding(
                "orphan-rollback",
                path,
                1,
                f"{path.name} is named like a rollback script, but no migration in "
                f"{folder.name}/ is named after it, so it is neither applied nor used as a "
                "rollback: name it after its migration (<migration>.rollback.sql), or rename "
                "it if it is a migration",
            )


def _fills_new_columns(statement: Statement, added: set[tuple[str, str]]) -> bool:
    """An UPDATE that only sets columns the same migration adds overwrites no existing data."""
    return all(
        loss.action == "UPDATE"
        and bool(loss.columns)
        and all((loss.target, column) in added for column in loss.columns)
        for loss in statement.data_loss
    )


def _losses(statement: Statement) -> str:
    return ", ".join(loss.describe() for loss in statement.data_loss) or statement.kind


FILE_CHECKS: tuple[Callable[[MigrationFile], Iterator[Finding]], ...] = (
    check_name,
    check_header,
    check_problems,
    check_stub,
    check_forward,
    check_rollback,
)
SET_CHECKS: tuple[Callable[[Sequence[Versioned]], Iterator[Finding]], ...] = (
    check_versions,
    check_orphan_rollbacks,
)
