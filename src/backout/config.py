"""Settings: where the migrations, postmortems and templates live, the environments, and the
review policy (:class:`ClockPolicy`: the deadline arithmetic is in postmortems/deadlines.py).

Every package imports this module, so it imports none of them: only errors.

Settings come from ``[tool.backout]`` in the project's ``pyproject.toml`` or from a ``backout.toml``
(top-level keys, or the same ``[tool.backout]`` table), found by walking up from the working
directory. Precedence: flags > environment variables > file > defaults. They are loaded once into
a frozen :class:`Settings`; relative paths are resolved against the folder holding the file.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backout.errors import ConfigError

CONFIG_FILE = "backout.toml"
PYPROJECT = "pyproject.toml"

DEFAULT_MIGRATIONS = ("migrations",)
DEFAULT_POSTMORTEMS = "ops/postmortems"
DEFAULT_TEMPLATES = "templates"
DEFAULT_REVIEW_WINDOW_HOURS = 72

DEFAULT_AUDIT_TABLE = "backout_audit_event"
DEFAULT_HISTORY_TABLE = "schema_migrations"
DEFAULT_DECISIONS_LOG = "docs/decisions.md"
DEFAULT_BACKUPS = ".backout/backups"
CACHE_FOLDER = ".backout/cache"
"""Where commands keep what they can reuse between runs (safe to delete at any time)."""

TOP_LEVEL_KEYS = (
    "migrations",
    "postmortems",
    "templates",
    "review_window_hours",
    "environments",
    "audit_table",
    "history_tables",
    "format",
    "formats",
    "history",
    "histories",
    "decisions_log",
    "backups",
    "review_clock",
    "time_zone",
    "action_item_days",
    "key_queries",
    "smoke_checks",
    "lint_lock_timeout",
    "fleets",
)
FORMAT_NAMES = (
    "strategy",
    "goose",
    "dbmate",
    "golang-migrate",
    "directory",
    "node-pg-migrate",
    "liquibase",
    "flyway",
    "sql-migrate",
)
"""The migration formats a folder can be read in (see :mod:`backout.migrations.formats`)."""
HISTORY_NAMES = (
    "backout",
    "dbmate",
    "goose",
    "golang-migrate",
    "node-pg-migrate",
    "flyway",
    "liquibase",
    "sqlx",
    "diesel",
)
"""The migration tools whose history table a folder's applied migrations can be read from
(see :mod:`backout.database.histories`)."""
FORMAT_TOOLS = {
    "strategy": "backout",
    "dbmate": "dbmate",
    "goose": "goose",
    "golang-migrate": "golang-migrate",
    "node-pg-migrate": "node-pg-migrate",
    "flyway": "flyway",
    "liquibase": "liquibase",
    "directory": "diesel",
}
"""The tool that usually writes a folder of each format's migrations: its table is looked
for first."""
KEY_QUERY_KEYS = ("name", "sql", "budget_ms")
SMOKE_CHECK_KEYS = ("name", "sql")
ENVIRONMENT_KEYS = ("url_env", "require_approval", "auto_rollback")
FLEET_KEYS = ("targets", "waves", "concurrency", "require_approval")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_QUALIFIED = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$")

# Environment variables that override the file (and are overridden by flags).
ENV_CONFIG = "BACKOUT_CONFIG"
ENV_MIGRATIONS = "BACKOUT_MIGRATIONS"  # os.pathsep-separated folders
ENV_POSTMORTEMS = "BACKOUT_POSTMORTEMS"
ENV_TEMPLATES = "BACKOUT_TEMPLATES"
ENV_REVIEW_WINDOW = "BACKOUT_REVIEW_WINDOW_HOURS"

# The review policy's vocabulary.
CLOCKS = ("wall", "business")
DEFAULT_ACTION_DAYS: Mapping[str, int] = {"SEV1": 15, "SEV2": 30, "SEV3": 45, "SEV4": 60}
"""Days to complete an action item, by severity (as in PagerDuty's postmortem process)."""

T = TypeVar("T")


class UnknownTimeZone(ValueError):
    """Not an IANA time zone name."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownTimeZone(
            f"{name!r} is not a time zone (use an IANA name such as Europe/Paris)"
        ) from None


@dataclass(frozen=True)
class ClockPolicy:
    """How a review window is counted (see :mod:`backout.postmortems.deadlines`).

    It lives with the settings that choose it, so that config, which every package imports,
    imports none of them."""

    hours: int = 72
    clock: str = "wall"
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ValueError(f"unknown clock {self.clock!r}: use {' or '.join(CLOCKS)}")
        zone(self.time_zone)

    def as_front_matter(self) -> dict[str, object]:
        return {
            "review_window_hours": self.hours,
            "clock": self.clock,
            "time_zone": self.time_zone,
        }


@dataclass(frozen=True)
class Environment:
    """A named database environment: the variable holding its URL; whether it needs approval."""

    name: str
    url_env: str
    require_approval: bool = False
    auto_rollback: bool = False
    """A failed ``apply`` rolls back what the same run applied (preview databases)."""


@dataclass(frozen=True)
class FleetConfig:
    """A named fleet (``[tool.backout.fleets.<name>]``): its targets, as a file or as lines in
    the targets file's syntax (read by :mod:`backout.fleets.targets`), and how it rolls out."""

    name: str
    targets_file: Path | None = None
    lines: tuple[str, ...] = ()
    waves: tuple[str, ...] | None = None
    """The waves after the canary (``10%``, ``5``, ``rest``); None: the default."""
    concurrency: int | None = None
    require_approval: bool = False


@dataclass(frozen=True)
class KeyQuery:
    """A query the application depends on: ``backout check`` runs it under EXPLAIN ANALYZE."""

    name: str
    sql: str
    budget_ms: float


@dataclass(frozen=True)
class SmokeCheck:
    """SQL whose first value must be true after apply, rollback and emergency."""

    name: str
    sql: str


@dataclass(frozen=True)
class Settings:
    """Everything backout needs to know about a project, resolved to absolute paths."""

    root: Path
    """The folder of the configuration file (the working directory when there is none)."""
    config_file: Path | None
    migrations: tuple[Path, ...]
    postmortems: Path
    templates: Path
    review_window_hours: int = DEFAULT_REVIEW_WINDOW_HOURS
    environments: Mapping[str, Environment] = field(default_factory=dict)
    audit_table: str = DEFAULT_AUDIT_TABLE
    history_tables: Mapping[Path, str] = field(default_factory=dict)
    """Explicit history tables by migrations folder; see :meth:`history_table`."""
    formats: Mapping[Path, str] = field(default_factory=dict)
    """The format of each migrations folder that is configured (``format``, ``formats``);
    the others' is detected from their files."""
    histories: Mapping[Path, str] = field(default_factory=dict)
    """The history tool of each folder that is configured (``history``, ``histories``): the
    tool whose table says what is applied. backout applies to a foreign tool's table only when
    configured here; the others' is detected from the tables in the database."""
    decisions_log: Path | None = None
    """Where apply/rollback on a named environment are recorded; ``None``: nowhere."""
    backups: Path | None = None
    """Where ``emergency`` writes its backups (``<root>/.backout/backups`` when ``None``)."""
    review_clock: str = "wall"
    """``wall`` or ``business`` (weekends skipped in ``time_zone``); see :mod:`deadlines`."""
    time_zone: str = "UTC"
    action_item_days: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_ACTION_DAYS))
    """Days to complete an action item, by severity."""
    key_queries: tuple[KeyQuery, ...] = ()
    smoke_checks: tuple[SmokeCheck, ...] = ()
    fleets: Mapping[str, FleetConfig] = field(default_factory=dict)
    lint_lock_timeout: str = "backout"
    """``backout`` or ``required``: who sets ``lock_timeout`` for the lint rule
    ``lock-timeout`` (:func:`backout.migrations.lint.options_for`)."""

    @property
    def clock_policy(self) -> ClockPolicy:
        return ClockPolicy(self.review_window_hours, self.review_clock, self.time_zone)

    @property
    def backups_folder(self) -> Path:
        return self.backups or self.root / DEFAULT_BACKUPS

    def history_table(self, folder: Path) -> str:
        """The history table of a migrations folder.

        The first folder uses the strategy's ``schema_migrations``; each other folder has its
        own table (their versions may collide), ``schema_migrations_<folder>`` unless
        ``history_tables`` names one.
        """
        if folder in self.history_tables:
            return self.history_tables[folder]
        if not self.migrations or folder == self.migrations[0]:
            return DEFAULT_HISTORY_TABLE
        slug = re.sub(r"[^a-z0-9]+", "_", self.relative(folder).lower()).strip("_")
        return f"{DEFAULT_HISTORY_TABLE}_{slug}"[:63]

    def relative(self, path: Path) -> str:
        """``path`` as shown to people: relative to the project root when it is inside it."""
        text, root = str(path), str(self.root)
        if os.sep == "/" and root != "/" and text.startswith(root + "/"):
            return text[len(root) + 1 :]  # what relative_to gives, without its cost per path
        for candidate in (path, path.resolve()) if path.is_absolute() else (path.resolve(),):
            try:
                return candidate.relative_to(self.root).as_posix()
            except ValueError:
                continue
        return str(path)


@dataclass(frozen=True)
class Overrides:
    """Values given as command-line flags; ``None`` means "not given"."""

    config_file: Path | None = None
    migrations: tuple[Path, ...] | None = None
    postmortems: Path | None = None
    templates: Path | None = None
    review_window_hours: int | None = None


def find_config(start: Path) -> tuple[Path | None, dict[str, Any]]:
    """Walk up from ``start`` to a ``backout.toml``, or a ``pyproject.toml`` with backout's table.

    Returns the file and its backout table; ``(None, {})`` when there is none.
    """
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            data = _read_toml(candidate)
            table = data.get("tool", {}).get("backout", data) if "tool" in data else data
            return candidate, _as_table(table, candidate, "the file")
        candidate = folder / PYPROJECT
        if candidate.is_file():
            data = _read_toml(candidate)
            table = data.get("tool", {}).get("backout")
            if table is not None:
                return candidate, _as_table(table, candidate, "[tool.backout]")
    return None, {}


def load_settings(
    cwd: Path,
    environ: Mapping[str, str] | None = None,
    overrides: Overrides | None = None,
) -> Settings:
    """Load a project's settings from the file found above ``cwd``, the environment and flags."""
    env = os.environ if environ is None else environ
    flags = overrides or Overrides()
    config_file, table = _config_table(cwd, env, flags)
    _check_keys(table, TOP_LEVEL_KEYS, config_file, "[tool.backout]")
    root = config_file.parent if config_file else cwd.resolve()
    given = _Sources(flags, env, table, config_file, here=cwd.resolve(), root=root)
    # Keyword arguments are evaluated in order: the first bad value is the one reported.
    return Settings(
        root=root,
        config_file=config_file,
        migrations=_migrations(given),
        postmortems=_folder(
            given, "postmortems", flags.postmortems, ENV_POSTMORTEMS, DEFAULT_POSTMORTEMS
        ),
        templates=_folder(given, "templates", flags.templates, ENV_TEMPLATES, DEFAULT_TEMPLATES),
        review_window_hours=_review_window(given),
        environments=_environments(table.get("environments"), config_file),
        audit_table=_identifier(table.get("audit_table", DEFAULT_AUDIT_TABLE), config_file),
        history_tables=_history_tables(given),
        formats=_formats(given),
        histories=_histories(given),
        decisions_log=_decisions_log(table.get("decisions_log", DEFAULT_DECISIONS_LOG), root),
        backups=_absolute(root, _path(table.get("backups"), config_file, "backups")),
        **_review_policy(table, config_file),
        key_queries=_key_queries(table.get("key_queries", []), config_file),
        smoke_checks=_smoke_checks(table.get("smoke_checks", []), config_file),
        fleets=_fleets(table.get("fleets"), config_file, root),
        lint_lock_timeout=_choice(
            table.get("lint_lock_timeout", "backout"),
            LINT_LOCK_TIMEOUTS,
            config_file,
            "lint_lock_timeout",
        ),
    )


@dataclass(frozen=True)
class _Sources:
    """Where a setting may come from, in precedence order: flags, environment, file, default.

    Flags and environment variables are relative to the working directory (``here``); the
    file's values to the folder holding the file (``root``).
    """

    flags: Overrides
    env: Mapping[str, str]
    table: Mapping[str, Any]
    file: Path | None
    here: Path
    root: Path


def _config_table(
    cwd: Path, env: Mapping[str, str], flags: Overrides
) -> tuple[Path | None, dict[str, Any]]:
    """The configuration file named by ``--config`` or ``BACKOUT_CONFIG``, else the one found
    above ``cwd``, and its backout table; ``(None, {})`` when there is none."""
    explicit = flags.config_file or (Path(env[ENV_CONFIG]) if env.get(ENV_CONFIG) else None)
    if explicit is None:
        return find_config(cwd.resolve())
    config_file = (cwd / explicit).resolve()
    if not config_file.is_file():
        raise ConfigError("configuration file not found", path=config_file)
    return config_file, read_config(config_file)


def _migrations(given: _Sources) -> tuple[Path, ...]:
    return _pick(
        _absolute_all(given.here, given.flags.migrations),
        _absolute_all(given.here, _env_paths(given.env.get(ENV_MIGRATIONS))),
        _absolute_all(given.root, _path_list(given.table.get("migrations"), given.file)),
        _absolute_all(given.root, tuple(Path(p) for p in DEFAULT_MIGRATIONS)),
    )


def _folder(given: _Sources, key: str, flag: Path | None, variable: str, default: str) -> Path:
    """The folder set by ``flag``, else the environment ``variable``, else ``key`` in the
    file, else ``default``."""
    return _pick(
        _absolute(given.here, flag),
        _absolute(given.here, _env_path(given.env.get(variable))),
        _absolute(given.root, _path(given.table.get(key), given.file, key)),
        _absolute(given.root, Path(default)),
    )


def _review_window(given: _Sources) -> int:
    """Hours to review an incident: a positive number, from wherever it was set first."""
    key = "review_window_hours"
    sources: list[tuple[int | None, str, Path | None]] = [
        (given.flags.review_window_hours, "--review-window-hours", None),
        (_env_int(given.env.get(ENV_REVIEW_WINDOW), ENV_REVIEW_WINDOW), ENV_REVIEW_WINDOW, None),
        (_int(given.table.get(key), given.file, key), key, given.file),
        (DEFAULT_REVIEW_WINDOW_HOURS, key, None),
    ]
    window, name, path = next(s for s in sources if s[0] is not None)
    assert window is not None
    if window <= 0:
        raise ConfigError(f"{name} must be a positive number of hours, not {window}", path=path)
    return window


def _history_tables(given: _Sources) -> dict[Path, str]:
    """``history_tables``: explicit table names by migrations folder."""
    tables = _as_table(
        given.table.get("history_tables", {}), given.file or given.root, "history_tables"
    )
    return {
        _absolute(given.root, Path(folder)): _identifier(name, given.file, _QUALIFIED)
        for folder, name in tables.items()
    }


def _formats(given: _Sources) -> dict[Path, str]:
    """``format`` (every folder) and ``formats`` (by folder, winning over ``format``)."""
    return _per_folder(given, "format", "formats", FORMAT_NAMES, "a migration format")


def _histories(given: _Sources) -> dict[Path, str]:
    """``history`` (every folder) and ``histories`` (by folder, winning over ``history``)."""
    return _per_folder(
        given, "history", "histories", HISTORY_NAMES, "a history table backout reads"
    )


def _per_folder(
    given: _Sources, every: str, by: str, names: tuple[str, ...], what: str
) -> dict[Path, str]:
    """A name for every folder (``every``) and by folder (the table ``by``, which wins), each
    one of ``names``."""
    where = given.file or given.root

    def checked(value: object, key: str) -> str:
        if value not in names:
            raise ConfigError(
                f"{key} = {value!r} is not {what}",
                path=where,
                hint=f"use one of {', '.join(names)}",
            )
        return str(value)

    by_folder = {
        _absolute(given.root, Path(folder)): checked(name, f"{by}.{folder}")
        for folder, name in _as_table(given.table.get(by, {}), where, by).items()
    }
    default = given.table.get(every)
    if default is not None:
        name = checked(default, every)
        return {folder: by_folder.get(folder, name) for folder in _migrations(given)}
    return by_folder


def _smoke_checks(value: object, path: Path | None) -> tuple[SmokeCheck, ...]:
    """``[[tool.backout.smoke_checks]]``: name, sql."""
    if not isinstance(value, list):
        raise ConfigError("smoke_checks must be a list of tables ([[smoke_checks]])", path=path)
    found = []
    for number, item in enumerate(value, start=1):
        where = f"smoke_checks #{number}"
        entry = _as_table(item, path or Path(), where)
        _check_keys(entry, SMOKE_CHECK_KEYS, path, where)
        name, text = entry.get("name"), entry.get("sql")
        if not isinstance(name, str) or not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{where} needs a name and an sql string", path=path)
        found.append(SmokeCheck(name, text))
    return tuple(found)


def _key_queries(value: object, path: Path | None) -> tuple[KeyQuery, ...]:
    """``[[tool.backout.key_queries]]``: name, sql, budget_ms."""
    if not isinstance(value, list):
        raise ConfigError("key_queries must be a list of tables ([[key_queries]])", path=path)
    found = []
    for number, item in enumerate(value, start=1):
        where = f"key_queries #{number}"
        entry = _as_table(item, path or Path(), where)
        _check_keys(entry, KEY_QUERY_KEYS, path, where)
        name, text, budget = entry.get("name"), entry.get("sql"), entry.get("budget_ms")
        if not isinstance(name, str) or not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{where} needs a name and an sql string", path=path)
        if not isinstance(budget, int | float) or isinstance(budget, bool) or budget <= 0:
            raise ConfigError(f"{where} needs budget_ms, a positive number", path=path)
        found.append(KeyQuery(name, text, float(budget)))
    return tuple(found)


def _review_policy(table: Mapping[str, Any], path: Path | None) -> dict[str, Any]:
    """``review_clock``, ``time_zone`` and ``action_item_days``, checked."""
    clock = table.get("review_clock", "wall")
    if clock not in CLOCKS:
        raise ConfigError(
            f"review_clock must be {' or '.join(map(repr, CLOCKS))}, not {clock!r}", path=path
        )
    time_zone = table.get("time_zone", "UTC")
    try:
        zone(str(time_zone))
    except UnknownTimeZone as exc:
        raise ConfigError(f"time_zone: {exc}", path=path) from None
    days = dict(DEFAULT_ACTION_DAYS)
    given = _as_table(table.get("action_item_days", {}), path or Path(), "action_item_days")
    _check_keys(given, tuple(DEFAULT_ACTION_DAYS), path, "action_item_days")
    for severity, value in given.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(
                f"action_item_days.{severity} must be a positive number of days", path=path
            )
        days[severity] = value
    return {"review_clock": clock, "time_zone": str(time_zone), "action_item_days": days}


LINT_LOCK_TIMEOUTS = ("backout", "required")


def _choice(value: object, choices: tuple[str, ...], path: Path | None, key: str) -> str:
    if value not in choices:
        raise ConfigError(
            f"{key} must be {' or '.join(map(repr, choices))}, not {value!r}", path=path
        )
    return str(value)


def _identifier(value: object, path: Path | None, pattern: re.Pattern[str] = _IDENTIFIER) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        schema = ", optionally after a schema and a dot" if pattern is _QUALIFIED else ""
        raise ConfigError(
            f"{value!r} is not a table name",
            path=path,
            hint=f"use letters, digits and underscores, at most 63 characters{schema}",
        )
    return value


def _decisions_log(value: object, root: Path) -> Path | None:
    if value is False:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError("decisions_log must be a file path, or false to turn it off")
    return (root / value).resolve()


def read_config(path: Path) -> dict[str, Any]:
    """Read the backout table of an explicitly named configuration file."""
    data = _read_toml(path)
    if path.name == PYPROJECT or "tool" in data:
        table = data.get("tool", {}).get("backout")
        if table is None:
            raise ConfigError("has no [tool.backout] table", path=path)
        return _as_table(table, path, "[tool.backout]")
    return _as_table(data, path, "the file")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"is not valid TOML: {exc}", path=path) from None
    except UnicodeDecodeError:
        raise ConfigError(
            "is not UTF-8 text (a binary file?)",
            path=path,
            hint="save it as UTF-8 TOML, or point --config at the project's configuration file",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror}", path=path) from None


def _as_table(value: object, path: Path, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{what} must be a table", path=path)
    return value


def _check_keys(
    table: Mapping[str, Any], known: tuple[str, ...], path: Path | None, where: str
) -> None:
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            raise ConfigError(f"unknown key {key!r} in {where}", path=path, hint=hint)


def _environments(value: object, path: Path | None) -> dict[str, Environment]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("[tool.backout.environments] must be a table of tables", path=path)
    result: dict[str, Environment] = {}
    for name, entry in value.items():
        where = f"[tool.backout.environments.{name}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table", path=path)
        _check_keys(entry, ENVIRONMENT_KEYS, path, where)
        url_env = entry.get("url_env")
        if not isinstance(url_env, str) or not url_env:
            raise ConfigError(
                f"{where} needs url_env, the environment variable holding its database URL",
                path=path,
                hint='e.g. url_env = "DATABASE_URL"',
            )
        flags = {key: entry.get(key, False) for key in ("require_approval", "auto_rollback")}
        for key, flag in flags.items():
            if not isinstance(flag, bool):
                raise ConfigError(f"{where} {key} must be true or false", path=path)
        result[name] = Environment(name=name, url_env=url_env, **flags)
    return result


def _fleets(value: object, path: Path | None, root: Path) -> dict[str, FleetConfig]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("[tool.backout.fleets] must be a table of tables", path=path)
    return {name: _fleet(name, entry, path, root) for name, entry in value.items()}


def _fleet(name: str, entry: object, path: Path | None, root: Path) -> FleetConfig:
    where = f"[tool.backout.fleets.{name}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table", path=path)
    _check_keys(entry, FLEET_KEYS, path, where)
    targets = entry.get("targets")
    hint = 'e.g. targets = "ops/fleets/tenants.txt", or targets = ["eu1 $EU1_URL", ...]'
    if isinstance(targets, str) and targets.strip():
        file, lines = root / targets, ()
    elif isinstance(targets, list) and targets and all(isinstance(t, str) for t in targets):
        file, lines = None, tuple(targets)
    else:
        raise ConfigError(f"{where} needs targets: a file or a list of lines", path=path, hint=hint)
    waves = entry.get("waves")
    if waves is not None and not (
        isinstance(waves, list) and all(isinstance(w, str | int) for w in waves)
    ):
        raise ConfigError(f'{where} waves must be a list such as ["10%", "rest"]', path=path)
    approval = entry.get("require_approval", False)
    if not isinstance(approval, bool):
        raise ConfigError(f"{where} require_approval must be true or false", path=path)
    return FleetConfig(
        name,
        file,
        lines,
        tuple(str(w) for w in waves) if waves is not None else None,
        _int(entry.get("concurrency"), path, f"{where} concurrency"),
        approval,
    )


def _pick(*values: T | None) -> T:
    for value in values:
        if value is not None:
            return value
    raise AssertionError("the last candidate is a default and is never None")


def _path_list(value: object, path: Path | None) -> tuple[Path, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            "migrations must be a folder or a non-empty list of folders",
            path=path,
            hint='e.g. migrations = ["src/infra/migrations"]',
        )
    return tuple(Path(v) for v in value)


def _path(value: object, path: Path | None, key: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a folder path", path=path)
    return Path(value)


def _int(value: object, path: Path | None, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be a whole number", path=path)
    return value


def _env_paths(value: str | None) -> tuple[Path, ...] | None:
    if not value:
        return None
    paths = tuple(Path(p) for p in value.split(os.pathsep) if p)
    if not paths:
        raise ConfigError(
            f"{ENV_MIGRATIONS}={value!r} names no folder",
            hint=f"separate folders with {os.pathsep!r}, or unset it",
        )
    return paths


def _env_path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _env_int(value: str | None, name: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a whole number of hours") from None


@overload
def _absolute(base: Path, path: Path) -> Path: ...
@overload
def _absolute(base: Path, path: None) -> None: ...
def _absolute(base: Path, path: Path | None) -> Path | None:
    return None if path is None else (base / path).resolve()


def _absolute_all(base: Path, paths: tuple[Path, ...] | None) -> tuple[Path, ...] | None:
    if paths is None:
        return None
    unique: dict[Path, None] = dict.fromkeys((base / p).resolve() for p in paths)
    return tuple(unique)
