"""Settings: which file is found, what overrides what, and how bad values are reported."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from backout.config import Environment, Overrides, Settings, load_settings
from backout.errors import ConfigError, ExitCode
from tests.helpers import write_tree

FULL_TABLE = """\
[tool.backout]
migrations = ["db/migrations"]
postmortems = "docs/postmortems"
templates = "docs/templates"
review_window_hours = 24
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The test's project folder, resolved as backout resolves every path."""
    return tmp_path.resolve()


def config_error(root: Path, filename: str, text: str) -> ConfigError:
    write_tree(root, {filename: text})
    with pytest.raises(ConfigError) as caught:
        load_settings(root, environ={})
    return caught.value


def test_without_a_file_the_defaults_are_relative_to_the_working_directory(root: Path) -> None:
    assert load_settings(root, environ={}) == Settings(
        root=root,
        config_file=None,
        migrations=(root / "migrations",),
        postmortems=root / "ops" / "postmortems",
        templates=root / "templates",
        review_window_hours=72,
        environments={},
        decisions_log=root / "docs" / "decisions.md",
    )


def test_pyproject_is_found_above_the_working_directory_and_paths_are_relative_to_it(
    root: Path,
) -> None:
    write_tree(root, {"pyproject.toml": FULL_TABLE, "src/app/__init__.py": ""})

    assert load_settings(root / "src" / "app", environ={}) == Settings(
        root=root,
        config_file=root / "pyproject.toml",
        migrations=(root / "db" / "migrations",),
        postmortems=root / "docs" / "postmortems",
        templates=root / "docs" / "templates",
        review_window_hours=24,
        decisions_log=root / "docs" / "decisions.md",
    )


def test_backout_toml_with_top_level_keys_wins_over_pyproject_in_the_same_folder(
    root: Path,
) -> None:
    write_tree(
        root,
        {"pyproject.toml": FULL_TABLE, "backout.toml": 'migrations = "sql"\n'},
    )

    settings = load_settings(root, environ={})

    assert (settings.config_file, settings.migrations) == (root / "backout.toml", (root / "sql",))


def test_a_pyproject_without_a_backout_table_is_skipped_and_the_walk_goes_on(root: Path) -> None:
    write_tree(
        root,
        {"pyproject.toml": FULL_TABLE, "packages/api/pyproject.toml": '[project]\nname = "api"\n'},
    )

    settings = load_settings(root / "packages" / "api", environ={})

    assert (settings.config_file, settings.migrations) == (
        root / "pyproject.toml",
        (root / "db" / "migrations",),
    )


def test_environment_variables_override_the_file_relative_to_the_working_directory(
    root: Path,
) -> None:
    write_tree(root, {"pyproject.toml": FULL_TABLE, "ops/README.md": ""})
    environ = {
        "BACKOUT_MIGRATIONS": os.pathsep.join(["../a", "../b"]),
        "BACKOUT_POSTMORTEMS": "incidents",
        "BACKOUT_TEMPLATES": "tpl",
        "BACKOUT_REVIEW_WINDOW_HOURS": "48",
    }

    settings = load_settings(root / "ops", environ=environ)

    assert (
        settings.migrations,
        settings.postmortems,
        settings.templates,
        settings.review_window_hours,
    ) == ((root / "a", root / "b"), root / "ops" / "incidents", root / "ops" / "tpl", 48)


def test_flags_override_environment_variables_relative_to_the_working_directory(
    root: Path,
) -> None:
    write_tree(root, {"pyproject.toml": FULL_TABLE, "ops/README.md": ""})
    environ = {
        "BACKOUT_MIGRATIONS": "env-migrations",
        "BACKOUT_POSTMORTEMS": "env-postmortems",
        "BACKOUT_TEMPLATES": "env-templates",
        "BACKOUT_REVIEW_WINDOW_HOURS": "48",
    }
    flags = Overrides(
        migrations=(Path("flag-migrations"),),
        postmortems=Path("flag-postmortems"),
        templates=Path("flag-templates"),
        review_window_hours=12,
    )

    settings = load_settings(root / "ops", environ=environ, overrides=flags)

    assert (
        settings.migrations,
        settings.postmortems,
        settings.templates,
        settings.review_window_hours,
    ) == (
        (root / "ops" / "flag-migrations",),
        root / "ops" / "flag-postmortems",
        root / "ops" / "flag-templates",
        12,
    )


def test_backout_config_names_a_file_the_walk_would_not_find(root: Path) -> None:
    write_tree(root, {"pyproject.toml": FULL_TABLE, "config/staging.toml": 'migrations = "sql"\n'})

    settings = load_settings(root, environ={"BACKOUT_CONFIG": "config/staging.toml"})

    assert (settings.root, settings.config_file, settings.migrations) == (
        root / "config",
        root / "config" / "staging.toml",
        (root / "config" / "sql",),
    )


def test_environments_are_parsed_with_approval_off_by_default(root: Path) -> None:
    write_tree(
        root,
        {
            "pyproject.toml": """\
[tool.backout.environments.staging]
url_env = "STAGING_DATABASE_URL"

[tool.backout.environments.production]
url_env = "PRODUCTION_DATABASE_URL"
require_approval = true
"""
        },
    )

    assert load_settings(root, environ={}).environments == {
        "staging": Environment("staging", "STAGING_DATABASE_URL", require_approval=False),
        "production": Environment("production", "PRODUCTION_DATABASE_URL", require_approval=True),
    }


def test_an_unknown_key_names_the_file_and_suggests_the_nearest_key(root: Path) -> None:
    error = config_error(root, "pyproject.toml", '[tool.backout]\nmigration = ["sql"]\n')

    assert str(error) == (
        f"{root / 'pyproject.toml'}: unknown key 'migration' in [tool.backout]; "
        "did you mean 'migrations'?"
    )


def test_an_unknown_key_in_an_environment_suggests_the_nearest_key(root: Path) -> None:
    error = config_error(
        root, "pyproject.toml", '[tool.backout.environments.staging]\nurl_evn = "STAGING_URL"\n'
    )

    assert str(error) == (
        f"{root / 'pyproject.toml'}: unknown key 'url_evn' in "
        "[tool.backout.environments.staging]; did you mean 'url_env'?"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('review_window_hours = "x"', "review_window_hours must be a whole number"),
        (
            "review_window_hours = -1",
            "review_window_hours must be a positive number of hours, not -1",
        ),
        ("migrations = []", "migrations must be a folder or a non-empty list of folders"),
    ],
)
def test_a_value_of_the_wrong_type_is_an_error_naming_the_file(
    root: Path, line: str, message: str
) -> None:
    error = config_error(root, "backout.toml", line + "\n")

    assert (error.path, error.message) == (
        root / "backout.toml",
        f"{root / 'backout.toml'}: {message}",
    )


def test_invalid_toml_is_an_error_naming_the_file(root: Path) -> None:
    error = config_error(root, "pyproject.toml", "[tool.backout\n")

    assert error.path == root / "pyproject.toml"
    assert error.message.startswith(f"{root / 'pyproject.toml'}: is not valid TOML: ")


def test_an_explicit_config_file_that_does_not_exist_is_an_error(root: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(root, environ={"BACKOUT_CONFIG": "missing.toml"})

    assert str(caught.value) == f"{root / 'missing.toml'}: configuration file not found"


def test_backout_migrations_with_only_separators_is_an_error_naming_the_variable(
    root: Path,
) -> None:
    with pytest.raises(ConfigError, match="BACKOUT_MIGRATIONS"):
        load_settings(root, environ={"BACKOUT_MIGRATIONS": os.pathsep})


def test_a_non_positive_window_from_the_environment_names_the_variable(root: Path) -> None:
    write_tree(root, {"pyproject.toml": FULL_TABLE})

    with pytest.raises(ConfigError, match="BACKOUT_REVIEW_WINDOW_HOURS"):
        load_settings(root, environ={"BACKOUT_REVIEW_WINDOW_HOURS": "0"})


def test_settings_are_frozen(root: Path) -> None:
    settings = load_settings(root, environ={})

    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.review_window_hours = 1  # type: ignore[misc]


def test_a_config_error_is_a_usage_error_exit_code() -> None:
    assert ConfigError("x").exit_code == ExitCode.USAGE
    assert int(ExitCode.USAGE) == 2


def test_format_applies_to_every_folder_and_formats_wins_for_its_folder(root: Path) -> None:
    write_tree(
        root,
        {
            "backout.toml": 'migrations = ["db/a", "db/b"]\nformat = "goose"\n'
            '[formats]\n"db/b" = "flyway"\n'
        },
    )

    settings = load_settings(root, environ={})

    assert settings.formats == {root / "db/a": "goose", root / "db/b": "flyway"}


def test_without_format_only_the_folders_formats_names_are_configured(root: Path) -> None:
    write_tree(
        root, {"backout.toml": 'migrations = ["db/a", "db/b"]\n[formats]\n"db/a" = "dbmate"\n'}
    )

    assert load_settings(root, environ={}).formats == {root / "db/a": "dbmate"}


def test_an_unknown_format_names_the_key_and_the_formats_there_are(root: Path) -> None:
    error = config_error(root, "backout.toml", 'format = "alembic"\n')

    assert error.exit_code == ExitCode.USAGE
    assert "format = 'alembic' is not a migration format" in error.message
    assert "goose" in str(error)


def test_history_applies_to_every_folder_and_histories_wins_for_its_folder(root: Path) -> None:
    write_tree(
        root,
        {
            "backout.toml": 'migrations = ["db/a", "db/b"]\nhistory = "dbmate"\n'
            '[histories]\n"db/b" = "goose"\n'
        },
    )

    settings = load_settings(root, environ={})

    assert settings.histories == {root / "db/a": "dbmate", root / "db/b": "goose"}


def test_an_unknown_history_names_the_key_and_the_tools_there_are(root: Path) -> None:
    error = config_error(root, "backout.toml", 'history = "alembic"\n')

    assert error.exit_code == ExitCode.USAGE
    assert "history = 'alembic' is not a history table backout reads" in error.message
    assert "node-pg-migrate" in str(error)
