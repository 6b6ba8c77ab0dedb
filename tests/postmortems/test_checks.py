"""``backout postmortems check``: the CI gate over the postmortems."""

from __future__ import annotations

from pathlib import Path

from backout.errors import ExitCode
from tests.runner import run


def test_check_is_a_ci_gate_with_github_annotations(project: Path) -> None:
    result = run("postmortems", "check", "--format", "github")

    assert result.exit_code == ExitCode.PROBLEMS
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("::error file=ops/postmortems/INC-20261120-01-late.md,")
        and "pm-review-overdue" in line
        for line in lines
    )
    assert any("pm-placeholder" in line and "INC-20261101-01" in line for line in lines)
