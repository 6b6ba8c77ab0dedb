"""The README is part of the interface: every command, rule and exit code is documented, and
every ``console`` example runs as written, with the output it shows."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
import typer

from backout.cli import app
from backout.errors import ExitCode
from backout.migrations.lint import RULES
from backout.postmortems.checks import CHECKS
from tests.runner import run

REPOSITORY = Path(__file__).resolve().parent.parent
README = (REPOSITORY / "README.md").read_text(encoding="utf-8")


def test_every_command_has_a_readme_section() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]

    missing = [name for name in commands if f"### backout {name}" not in README]

    assert missing == []


def table_rows(heading: str) -> dict[str, str]:
    """``{id: severity}`` from the table under ``## heading``."""
    section = README.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([a-z-]+)` \| (error|warning) \|", section, re.MULTILINE))


def test_every_lint_rule_is_in_the_readme_table_with_its_severity() -> None:
    assert table_rows("Lint rules") == {rule.id: rule.severity.value for rule in RULES.values()}


def test_every_postmortem_check_is_in_the_readme_table_with_its_severity() -> None:
    assert table_rows("Postmortem checks") == {c.id: c.severity.value for c in CHECKS.values()}


def test_every_exit_code_is_in_the_readme_table() -> None:
    codes = {int(code) for code in re.findall(r"^\| (\d+) \|", README, re.MULTILINE)}

    assert codes == {int(code) for code in ExitCode}


def examples() -> list[tuple[list[str], list[str]]]:
    """``(argv, expected lines)`` for each ``$ backout ...`` line of the console blocks."""
    found: list[tuple[list[str], list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", README, re.DOTALL):
        for line in block.splitlines():
            if line.startswith("$ backout "):
                found.append((shlex.split(line)[2:], []))
            elif found:
                found[-1][1].append(line)
    return found


def matches(expected: list[str], actual: list[str]) -> bool:
    """Line by line; a ``...`` line stands for any number of lines, and ``...`` inside a line
    for any text (a time, a database name)."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    pattern = ".*".join(re.escape(part) for part in expected[0].split("..."))
    return (
        bool(actual)
        and re.fullmatch(pattern, actual[0]) is not None
        and matches(expected[1:], actual[1:])
    )


def test_the_readme_examples_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    for name in ("pyproject.toml", "migrations", "templates"):
        source = REPOSITORY / name
        copy = shutil.copytree if source.is_dir() else shutil.copy
        copy(source, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    for variable in ("BACKOUT_CONFIG", "BACKOUT_MIGRATIONS", "BACKOUT_TEMPLATES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GITHUB_ACTOR", "ada")

    assert examples(), "the README has no console examples"
    for argv, expected in examples():
        result = run(*argv)
        actual = (result.stderr + result.stdout).rstrip("\n").splitlines()
        assert matches(expected, actual), f"backout {shlex.join(argv)} printed:\n" + "\n".join(
            actual
        )


def synopsis(command: str) -> str:
    """The `backout <command> ...` line at the start of the command's section."""
    section = README.split(f"### backout {command}\n", 1)[1].split("\n### ", 1)[0]
    found = re.search(rf"`(backout {command}\b[^`]*)`", section)
    assert found is not None, f"### backout {command} has no synopsis"
    return " ".join(found[1].split())


def options_in_examples(command: str) -> set[str]:
    """The options the README's examples give `command`: in code blocks and in inline code."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", README, re.DOTALL | re.MULTILINE)
    prose = re.sub(r"^```[a-z]*\n.*?^```", "", README, flags=re.DOTALL | re.MULTILINE)
    lines = [line for block in blocks for line in block.splitlines()]
    lines += [" ".join(span.split()) for span in re.findall(r"`(backout [^`]*)`", prose)]
    used: set[str] = set()
    for line in lines:
        words = line.removeprefix("$ ").split(" #", 1)[0].split()
        if words[:2] == ["backout", command]:
            used |= {m[0] for w in words[2:] if (m := re.match(r"--?[a-z][a-z-]*", w))}
    return used


def real_options(command: str) -> set[str]:
    built = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    return {o for p in built.params if not p.hidden for o in (*p.opts, *p.secondary_opts)}


TOP_LEVEL = [c for c in typer.main.get_command(app).commands if c != "postmortems"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", TOP_LEVEL)
def test_each_synopsis_names_every_option_its_examples_use_and_only_real_ones(
    command: str,
) -> None:
    named = set(re.findall(r"(?<![\w-])--?[a-z][a-z-]*", synopsis(command)))
    named_or_implied = named | {"--help"}

    assert sorted(options_in_examples(command) - named_or_implied) == []
    assert sorted(named - real_options(command)) == []
