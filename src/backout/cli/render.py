"""Rendering for people (text) and machines (JSON): the pieces every command shares (JSON,
statements) and the migrations (``show``, ``lint``). Pure: data in, text out.

The operations' renderers are in :mod:`backout.cli.render_operations` and
:mod:`backout.cli.render_emergency`, so that ``lint`` and ``show`` load no database code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from backout.migrations.file import MigrationFile
from backout.migrations.lint import Finding, Report, Severity
from backout.migrations.statements import Flag, Statement
from backout.migrations.transaction_control import Wrapper

Display = Callable[[Path], str]


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def migration_json(
    m: MigrationFile, display: Display, history: str | None = None
) -> dict[str, Any]:
    """``backout show --json``: stable keys, see the README."""
    return {
        "version": m.version,
        "name": m.name,
        "format": m.format,
        "history": history,
        "path": display(m.path),
        "folder": display(m.folder),
        "header": dict(m.header),
        "statements": [statement_json(s) for s in m.statements],
        "wrapper": wrapper_json(m.wrapper),
        "rollback": {
            "statements": [statement_json(s) for s in m.rollback.statements],
            "notes": list(m.rollback.notes),
            "source": m.rollback.source,
        },
        "rollback_wrapper": wrapper_json(m.rollback.wrapper),
        "rollback_path": display(m.rollback.path) if m.rollback.path else None,
        "sections": {
            "forward": _section_json(m.path, m.statements, display),
            "rollback": _section_json(m.rollback.path, m.rollback.statements, display),
        },
        "checksum": m.checksum,
        "rollback_checksum": m.rollback.checksum,
        "flags": _flags_json(m),
        "problems": [
            {"code": p.code, "line": p.line, "message": p.message} for p in m.all_problems
        ],
    }


def statement_json(s: Statement) -> dict[str, Any]:
    return {"sql": s.sql, "line": s.line}


def wrapper_json(wrapper: Wrapper | None) -> dict[str, Any] | None:
    """The ``BEGIN ... COMMIT`` around a section (not sent), or ``None``."""
    if wrapper is None:
        return None
    begin, commit = wrapper.lines
    return {"begin_line": begin, "commit_line": commit, "sent": False, "note": wrapper.describe()}


def _flags_json(m: MigrationFile) -> list[dict[str, Any]]:
    flags = []
    for section, statements in (("forward", m.statements), ("rollback", m.rollback.statements)):
        for s in statements:
            for flag in sorted(s.flags):
                flags.append(
                    {
                        "flag": str(flag),
                        "section": section,
                        "line": s.line,
                        "detail": _detail(s, flag),
                    }
                )
    return flags


def _detail(s: Statement, flag: Flag) -> str:
    if flag is Flag.DESTROYS_DATA:
        return ", ".join(loss.describe() for loss in s.data_loss)
    if flag is Flag.NON_TRANSACTIONAL:
        return s.non_transactional_reason or s.kind
    return s.transaction_control or s.sql.split()[0].upper()


def _section_json(
    path: Path | None, statements: Sequence[Statement], display: Display
) -> dict[str, Any] | None:
    """Where a section's statements come from: the file and the lines from first to last."""
    if path is None or not statements:
        return None
    last = statements[-1]
    return {
        "path": display(path),
        "lines": [statements[0].line, last.line + last.sql.count("\n")],
    }


def migration_text(m: MigrationFile, display: Display, history: str | None = None) -> str:
    """``backout show``: the parsed migration, rollback SQL exactly as it would run; with
    ``history``, whose table says whether it is applied."""
    out = [m.name, f"  file      {display(m.path)}", f"  checksum  sha256:{m.checksum}"]
    if m.format != "strategy":
        out.insert(2, f"  format    {m.format}")
    if history is not None:
        out.insert(3 if m.format != "strategy" else 2, f"  history   {history}")
    if m.rollback.checksum:
        out.append(f"  rollback  sha256:{m.rollback.checksum}")
    out += ["", "Header"]
    width = max((len(k) for k in m.header), default=0)
    out += [f"  {k.ljust(width)}  {v}" for k, v in m.header.items()] or ["  (none)"]
    out += ["", f"Forward SQL ({_count(m.statements)})"]
    out += _wrapper_text(m.wrapper) + (statements_text(m.statements) or ["  (none)"])
    out.append("")
    rollback = m.rollback
    if not rollback.found:
        out += ["Rollback SQL", "  (none documented)"]
    else:
        where = display(rollback.path) if rollback.path and rollback.path != m.path else "this file"
        out.append(
            f"Rollback SQL ({_count(rollback.statements)}; {rollback.source} in {where} at line "
            f"{rollback.line}; exactly what would run, in order)"
        )
        out += _wrapper_text(rollback.wrapper)
        out += statements_text(rollback.statements) or ["  (no statement)"]
    if rollback.notes:
        out += ["", "Rollback notes"]
        out += [f"  ! {note}" for note in rollback.notes]
    if m.all_problems:
        out += ["", "Problems (see `backout lint`)"]
        out += [f"  line {p.line}: {p.code}: {p.message}" for p in m.all_problems]
    return "\n".join(out)


def _wrapper_text(wrapper: Wrapper | None) -> list[str]:
    return [] if wrapper is None else [f"  note: {wrapper.describe()}"]


def _count(statements: tuple[Statement, ...]) -> str:
    return f"{len(statements)} statement" + ("" if len(statements) == 1 else "s")


def statements_text(statements: tuple[Statement, ...]) -> list[str]:
    out: list[str] = []
    for s in statements:
        marks = "; ".join(f"{flag}: {_detail(s, flag)}" for flag in sorted(s.flags))
        out.append(f"  line {s.line}" + (f"  [{marks}]" if marks else ""))
        out += [f"    {line}".rstrip() for line in (s.sql + ";").split("\n")]
    return out


def lint_text(report: Report, display: Display) -> list[tuple[str, str | None]]:
    """``backout lint`` as lines with an optional colour, grouped by file."""
    out: list[tuple[str, str | None]] = []
    current: Path | None = None
    for f in report.findings:
        if f.file != current:
            if current is not None:
                out.append(("", None))
            out.append((display(f.file), "bright_white"))
            current = f.file
        colour = "red" if f.severity is Severity.ERROR else "yellow"
        out.append((f"  {f.line:>4}  {f.severity.value:<7}  {f.rule}: {f.message}", colour))
    if report.findings:
        out.append(("", None))
    out.append((_summary(report), "red" if report.errors else "green"))
    return out


def _summary(report: Report) -> str:
    files = f"{report.files} file" + ("" if report.files == 1 else "s")
    if not report.findings:
        return f"No problems found in {files}."
    errors = f"{report.errors} error" + ("" if report.errors == 1 else "s")
    warnings = f"{report.warnings} warning" + ("" if report.warnings == 1 else "s")
    return f"Found {errors} and {warnings} in {files}."


def lint_json(report: Report, display: Display) -> dict[str, Any]:
    return {
        "files": report.files,
        "errors": report.errors,
        "warnings": report.warnings,
        "findings": [_finding_json(f, display) for f in report.findings],
    }


def _finding_json(f: Finding, display: Display) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "severity": f.severity.value,
        "file": display(f.file),
        "line": f.line,
        "message": f.message,
    }


def lint_github(report: Report, display: Display) -> str:
    """GitHub Actions workflow commands: one annotation per finding."""
    return "\n".join(
        f"::{f.severity.value} file={_escape(display(f.file), True)},line={f.line},"
        f"title={_escape(f.rule, True)}::{_escape(f.message, False)}"
        for f in report.findings
    )


def _escape(value: str, prop: bool) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def statements_sql(statements: Sequence[Statement]) -> str:
    """Statements as a runnable script, each with its ``;``."""
    return "".join(f"{s.sql};\n" for s in statements)
