"""The migrations package's boundary: pure, it loads no database driver and no package above it."""

from __future__ import annotations

import json
import subprocess
import sys

# Imports every module of a package in a fresh interpreter; prints the modules then loaded.
LOADED = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for module in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
    importlib.import_module(module.name)
print(json.dumps(sorted(sys.modules)))
"""


def loaded_by(package: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED, package], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout))


def test_migrations_load_no_database_and_no_package_above_them() -> None:
    loaded = loaded_by("backout.migrations")

    assert "backout.migrations.catalog" in loaded
    forbidden = ("backout.database", "backout.operations", "backout.postmortems", "backout.cli")
    assert sorted(m for m in loaded if m.startswith(forbidden)) == []
    assert sorted(m for m in loaded if m.split(".")[0] in {"psycopg", "typer", "rich", "git"}) == []
