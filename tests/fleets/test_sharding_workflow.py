"""The README's GitHub Actions workflow for a sharded fleet emergency: actionlint accepts it,
and it runs what the section says (a matrix of shards, then the merge)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.project.test_hooks import actionlint

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("### Sharding a fleet emergency across CI jobs\n", 1)[1].split("\n### ")[0]


def workflow() -> str:
    found = re.search(r"^```yaml\n(.*?)^```", SECTION, re.DOTALL | re.MULTILINE)
    assert found is not None, "the sharding section has no workflow"
    return found[1]


def test_the_readme_workflow_passes_actionlint(tmp_path: Path) -> None:
    path = tmp_path / ".github" / "workflows" / "fleet-emergency.yml"
    path.parent.mkdir(parents=True)
    path.write_text(workflow(), encoding="utf-8")

    assert actionlint(path) == []


def test_the_readme_workflow_runs_one_job_per_shard_then_the_merge() -> None:
    text = workflow()

    assert "shard: [1, 2, 3, 4]" in text
    assert "--shard ${{ matrix.shard }}/4 --yes" in text
    assert "needs: rollback" in text
    assert "backout postmortems merge --json" in text
    assert "include-hidden-files: true" in text  # .backout/ is a hidden folder
