"""The real dbmate and node-pg-migrate, installed from npm, for the history adapters' round trips.

The versions are pinned in tests/tools/npm/package.json and package-lock.json. ``npm install``
installs them once into ``$XDG_CACHE_HOME/backout-tests/npm-<hash of the two files>`` (by
default under ``~/.cache``), so a changed manifest gets a fresh folder and a run with the
folder already there needs no network. Not ``npm ci``: the lock holds dbmate's binary for the
platform that wrote it only, and dbmate pins the other platforms' binaries to its own version.
Without npm, or when the install fails (no network), the tests that need a tool are skipped,
saying why.

A test gets a :class:`Tool` for the test's own database (fixtures ``dbmate``,
``node_pg_migrate``) and runs it in a folder of migrations: ``dbmate("up", cwd=project)``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from psycopg.conninfo import conninfo_to_dict

MANIFEST = Path(__file__).resolve().parents[2] / "tools" / "npm"
FILES = ("package.json", "package-lock.json")
INSTALL_TIMEOUT = 300
RUN_TIMEOUT = 120


@dataclass(frozen=True)
class Tool:
    """One migration tool's command, pointed at one database through ``DATABASE_URL``."""

    executable: Path
    database_url: str
    """In the spelling the tool reads (see :func:`tool_url`)."""

    def __call__(
        self, *args: str, cwd: Path, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the tool in ``cwd``; fail the test with its output when it fails and ``check``."""
        return run_tool(self.executable, args, cwd, self.database_url, check=check)


def run_tool(
    executable: Path, args: tuple[str, ...], cwd: Path, database_url: str, *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``executable args...`` in ``cwd`` with ``DATABASE_URL`` set, its output captured."""
    env = {**os.environ, "DATABASE_URL": database_url, "NO_COLOR": "1"}
    done = subprocess.run(
        [str(executable), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    if check and done.returncode != 0:
        pytest.fail(
            f"{executable.name} {' '.join(args)} exited {done.returncode}:\n"
            f"{done.stdout}\n{done.stderr}"
        )
    return done


def tool_url(database_url: str) -> str:
    """``database_url`` as both tools read it: a ``postgres://`` URL without SSL (dbmate's
    driver asks for it unless told), a socket directory as the ``host`` parameter."""
    params = conninfo_to_dict(database_url)
    user = quote(str(params.get("user", "postgres")), safe="")
    password = params.get("password")
    credentials = f"{user}:{quote(str(password), safe='')}" if password else user
    host = str(params.get("host") or "localhost")
    port = str(params.get("port") or "5432")
    database = quote(str(params.get("dbname", "postgres")), safe="")
    query = {"sslmode": "disable"}
    if host.startswith("/"):
        query.update(host=host, port=port)
        return f"postgres://{credentials}@/{database}?{urlencode(query)}"
    return f"postgres://{credentials}@{host}:{port}/{database}?{urlencode(query)}"


def installed_tools() -> Path:
    """The folder of the installed tools' commands (``node_modules/.bin``); skip when npm is
    missing or cannot install them."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(
            "npm not found: install Node.js to run the dbmate and node-pg-migrate round trips"
        )
    folder = _cache() / f"npm-{_manifest_hash()}"
    if not (folder / "node_modules" / ".bin").is_dir():
        _install(npm, folder)
    return folder / "node_modules" / ".bin"


def _install(npm: str, folder: Path) -> None:
    """``npm install`` into a private folder, then moved into place (two workers may race)."""
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in FILES:
        shutil.copy(MANIFEST / name, partial / name)
    try:
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--no-save", "--loglevel=error"],
            cwd=partial,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        shutil.rmtree(partial, ignore_errors=True)
        pytest.skip(
            f"npm ci took over {INSTALL_TIMEOUT}s (no network?): dbmate round trips skipped"
        )
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        pytest.skip(f"npm install failed (no network?): {_npm_error(done.stderr)}")
    try:
        partial.rename(folder)
    except OSError:  # another worker installed it first
        shutil.rmtree(partial, ignore_errors=True)


def _npm_error(stderr: str) -> str:
    """npm's first words of error (its code and message), not its log file's name."""
    said = [line.removeprefix("npm error").strip() for line in stderr.splitlines()]
    return "; ".join([line for line in said if line and not line.startswith("A complete log")][:2])


def _cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "backout-tests"


def _manifest_hash() -> str:
    digest = hashlib.sha256()
    for name in FILES:
        digest.update((MANIFEST / name).read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def npm_tools() -> Path:
    """The installed tools' commands (once per session)."""
    return installed_tools()


def _tool(npm_tools: Path, name: str, database_url: str) -> Tool:
    executable = npm_tools / name
    broken = _broken(executable)
    if broken is not None:
        pytest.skip(f"{name} does not run here ({broken}): reinstall it with an empty cache")
    return Tool(executable, tool_url(database_url))


@functools.cache
def _broken(executable: Path) -> str | None:
    """Why ``executable --version`` fails (dbmate's binary missing for this platform), once."""
    probe = run_tool(executable, ("--version",), executable.parent, "", check=False)
    return None if probe.returncode == 0 else probe.stderr.strip()[:200]


@pytest.fixture
def dbmate(npm_tools: Path, database_url: str) -> Tool:
    """dbmate, on this test's database."""
    return _tool(npm_tools, "dbmate", database_url)


@pytest.fixture
def node_pg_migrate(npm_tools: Path, database_url: str) -> Tool:
    """node-pg-migrate, on this test's database."""
    return _tool(npm_tools, "node-pg-migrate", database_url)
