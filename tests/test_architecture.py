"""The package's shape, as the README's map describes it: what each package may import, short
functions, one module that touches git, no import cycle, and a core that never prints or exits.

Read from the source with :mod:`ast`, and checked once for real: every module of a package
imported in a fresh interpreter loads nothing the map forbids.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "backout"
LONGEST_FUNCTION = 50

MAY_NOT_IMPORT = {
    "backout.migrations": ("backout.database", "backout.operations", "backout.postmortems"),
    "backout.database": ("backout.operations", "backout.postmortems"),
    "backout.postmortems": ("backout.database", "backout.operations"),
    "backout.project": ("backout.operations", "backout.postmortems"),
    "backout.fleets": ("backout.operations", "backout.postmortems", "backout.migrations"),
}
"""Beyond the rule for every core module: never ``backout.cli``."""

NEVER_LOADED = {
    "backout.migrations": ("psycopg", "typer", "rich", "git"),
    "backout.database": ("typer", "rich", "git"),
}
"""Third-party packages a package must not load, even through another module."""

# Imports every module of a package in a fresh interpreter; prints the modules then loaded.
LOADED = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for module in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
    importlib.import_module(module.name)
print(json.dumps(sorted(sys.modules)))
"""


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """``node`` and everything in it, but what only type checkers read (``if TYPE_CHECKING:``)."""
    yield node
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and ast.unparse(child.test) == "TYPE_CHECKING":
            continue
        yield from runtime_nodes(child)


def imported(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports when it runs, at the top or inside a function:
    ``from p import m`` counts as importing ``p.m`` when that is a module, else ``p``."""
    known = modules()
    found: set[str] = set()
    for node in runtime_nodes(tree(path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{name}: relative import"
            base = node.module or ""
            for alias in node.names:
                module = f"{base}.{alias.name}"
                found.add(module if module in known else base)
    return found


def core() -> Iterator[tuple[str, Path]]:
    for name, path in modules().items():
        if (
            name != "backout.cli"
            and not name.startswith("backout.cli.")
            and name != "backout.__main__"
        ):
            yield name, path


def test_no_function_is_longer_than_fifty_lines() -> None:
    long = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({length} lines)"
        for path in modules().values()
        for node in ast.walk(tree(path))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (length := (node.end_lineno or node.lineno) - node.lineno + 1) > LONGEST_FUNCTION
    ]
    assert long == []


def test_the_core_never_imports_the_command_line_typer_or_rich() -> None:
    offending = [
        f"{name} imports {module}"
        for name, path in core()
        for module in sorted(imported(name, path))
        if module.split(".")[0] in ("typer", "rich", "click")
        or module == "backout.cli"
        or module.startswith("backout.cli.")
    ]
    assert offending == []


def test_the_core_never_prints_or_exits() -> None:
    calls = []
    for name, path in core():
        for node in ast.walk(tree(path)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in ("print", "exit", "quit"):
                calls.append(f"{name}:{node.lineno} {func.id}()")
            if isinstance(func, ast.Attribute) and func.attr == "exit":
                calls.append(f"{name}:{node.lineno} .exit()")
    assert calls == []


@pytest.mark.parametrize("package", sorted(MAY_NOT_IMPORT))
def test_each_package_imports_only_what_the_map_allows(package: str) -> None:
    forbidden = MAY_NOT_IMPORT[package]
    offending = [
        f"{name} imports {module}"
        for name, path in modules().items()
        if name == package or name.startswith(package + ".")
        for module in sorted(imported(name, path))
        if any(module == f or module.startswith(f + ".") for f in forbidden)
    ]
    assert offending == []


def test_one_module_touches_git() -> None:
    touching = sorted(
        name
        for name, path in modules().items()
        if any(
            m == "git" or m.startswith("git.") or m == "subprocess" for m in imported(name, path)
        )
    )
    assert touching == ["backout.git"]


def test_the_import_graph_has_no_cycle() -> None:
    known = modules()
    graph = {
        name: {m for m in imported(name, path) if m in known and m != name}
        for name, path in known.items()
    }
    cycles = []
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*trail[trail.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def loaded_by(package: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED, package], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("package", sorted(NEVER_LOADED))
def test_importing_a_package_loads_nothing_the_map_forbids(package: str) -> None:
    loaded = loaded_by(package)

    assert any(m.startswith(package + ".") for m in loaded)
    forbidden = (*MAY_NOT_IMPORT[package], "backout.cli")
    assert sorted(m for m in loaded if m.startswith(forbidden)) == []
    assert sorted(m for m in loaded if m.split(".")[0] in NEVER_LOADED[package]) == []
