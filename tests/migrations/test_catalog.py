"""The catalog: which files are migrations, how a reference names one, and the next version."""

from __future__ import annotations

from pathlib import Path

import pytest

from backout.errors import (
    AmbiguousMigrationError,
    ConfigError,
    ExitCode,
    UnknownMigrationError,
    UsageError,
)
from backout.migrations.catalog import (
    Catalog,
    DuplicateVersionError,
    choose_folder,
    discover,
    executable_catalog,
)
from tests.helpers import settings_for, write_migrations, write_tree

IMPACT = "004_alter_events_add_impact_score"
SERVICE = "src/infra/idempotency/migrations"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project with one migrations folder holding migrations, rollbacks and other files."""
    root = tmp_path.resolve()
    write_migrations(
        root / "migrations",
        "010_add_markets_index.sql",
        "001_create_jobs.sql",
        f"{IMPACT}.sql",
        "002_create_core_schema.sql",
        f"{IMPACT}.rollback.sql",
        "002_create_core_schema.down.sql",
        "archive/003_old_idea.sql",
    )
    write_tree(root, {"migrations/README.md": "", "migrations/notes.txt": ""})
    return root


def catalog_of(root: Path, *folders: str) -> Catalog:
    return discover(root, tuple(root / folder for folder in folders))


def test_discover_lists_only_migration_files_in_version_order(root: Path) -> None:
    catalog = catalog_of(root, "migrations")

    assert [(e.name, e.version) for e in catalog.entries] == [
        ("001_create_jobs", "001"),
        ("002_create_core_schema", "002"),
        (IMPACT, "004"),
        ("010_add_markets_index", "010"),
    ]


@pytest.mark.parametrize(
    "reference",
    ["004", "4", IMPACT, f"{IMPACT}.sql", "alter_events_add_impact_score", f"migrations/{IMPACT}"],
)
def test_a_migration_is_named_by_version_name_description_or_path(
    root: Path, reference: str
) -> None:
    entry = catalog_of(root, "migrations").resolve(reference, cwd=root)

    assert entry.path == root / "migrations" / f"{IMPACT}.sql"


def test_a_path_is_relative_to_the_working_directory(root: Path) -> None:
    (root / "docs").mkdir()

    entry = catalog_of(root, "migrations").resolve(f"../migrations/{IMPACT}.sql", cwd=root / "docs")

    assert entry.path == root / "migrations" / f"{IMPACT}.sql"


def test_a_version_in_two_folders_is_ambiguous_and_lists_both_paths(root: Path) -> None:
    write_migrations(root / SERVICE, "001_create_idempotency_keys.sql")

    with pytest.raises(AmbiguousMigrationError) as caught:
        catalog_of(root, "migrations", SERVICE).resolve("001", cwd=root)

    assert caught.value.candidates == (
        "migrations/001_create_jobs.sql",
        f"{SERVICE}/001_create_idempotency_keys.sql",
    )


def test_a_folder_and_a_version_name_one_migration_among_folders(root: Path) -> None:
    write_migrations(root / SERVICE, "001_create_idempotency_keys.sql")

    entry = catalog_of(root, "migrations", SERVICE).resolve(f"{SERVICE}/001", cwd=root)

    assert entry.path == root / SERVICE / "001_create_idempotency_keys.sql"


def test_an_unknown_reference_suggests_close_names(root: Path) -> None:
    with pytest.raises(UnknownMigrationError) as caught:
        catalog_of(root, "migrations").resolve("alter_events_add_impact_scor", cwd=root)

    assert str(caught.value) == (
        f"unknown migration 'alter_events_add_impact_scor'; did you mean {IMPACT}?"
    )


def test_an_unknown_prefix_of_a_name_suggests_the_name(root: Path) -> None:
    with pytest.raises(UnknownMigrationError) as caught:
        catalog_of(root, "migrations").resolve("004_alter_event", cwd=root)

    assert caught.value.suggestions == (IMPACT,)


def test_an_unknown_reference_with_nothing_close_points_at_lint(root: Path) -> None:
    with pytest.raises(UnknownMigrationError) as caught:
        catalog_of(root, "migrations").resolve("999", cwd=root)

    assert str(caught.value) == (
        "unknown migration '999'; run `backout lint` to list the migrations backout can see"
    )


def test_an_existing_sql_file_outside_the_folders_is_refused(root: Path) -> None:
    write_tree(root, {"secrets.sql": "SELECT 'hunter2';\n"})

    with pytest.raises(UsageError) as caught:
        catalog_of(root, "migrations").resolve("migrations/../secrets.sql", cwd=root)

    assert caught.value.message == (
        "migrations/../secrets.sql is outside the configured migration folders (migrations)"
    )


def test_a_path_to_a_missing_file_outside_the_folders_is_unknown(root: Path) -> None:
    with pytest.raises(UnknownMigrationError) as caught:
        catalog_of(root, "migrations").resolve("migrations/../secrets.sql", cwd=root)

    assert caught.value.message == (
        "unknown migration 'migrations/../secrets.sql' "
        "(its folder is not a configured migration folder)"
    )


def test_a_migration_with_the_same_name_in_an_unconfigured_folder_is_refused(root: Path) -> None:
    with pytest.raises(UsageError, match="is outside the configured migration folders"):
        catalog_of(root, "migrations").resolve("migrations/archive/003_old_idea.sql", cwd=root)


def test_a_rollback_file_is_not_a_migration(root: Path) -> None:
    with pytest.raises(UsageError) as caught:
        catalog_of(root, "migrations").resolve(f"migrations/{IMPACT}.rollback.sql", cwd=root)

    assert caught.value.message == f"migrations/{IMPACT}.rollback.sql is not a migration file"


def test_the_next_version_is_one_more_than_the_highest_padded_to_three_digits(root: Path) -> None:
    assert catalog_of(root, "migrations").next_version(root / "migrations") == "011"


def test_the_first_version_in_an_empty_folder_is_001(root: Path) -> None:
    (root / "empty").mkdir()

    assert catalog_of(root, "empty").next_version(root / "empty") == "001"


def test_the_next_version_keeps_the_folders_own_width(root: Path) -> None:
    folder = root / "unpadded"
    folder.mkdir()
    for name in ("1_users.up.sql", "1_users.down.sql", "2_email.up.sql", "2_email.down.sql"):
        (folder / name).write_text("SELECT 1;\n")

    assert catalog_of(root, "unpadded").next_version(folder) == "3"


def test_a_missing_folder_is_a_config_error(root: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        catalog_of(root, "migrations", "db")

    assert str(caught.value) == (
        "migrations folder db does not exist; "
        "create it, or point [tool.backout] migrations at your folders"
    )


def test_a_missing_folder_is_skipped_when_it_need_not_exist(root: Path) -> None:
    catalog = discover(root, (root / "db",), must_exist=False)

    assert (catalog.entries, catalog.next_version(root / "db")) == ((), "001")


def test_the_only_folder_is_chosen_without_a_flag(root: Path) -> None:
    assert choose_folder(settings_for(root, "migrations"), None, cwd=root) == root / "migrations"


def test_several_folders_without_a_flag_are_a_usage_error(root: Path) -> None:
    with pytest.raises(UsageError) as caught:
        choose_folder(settings_for(root, "migrations", SERVICE), None, cwd=root)

    assert str(caught.value) == (
        f"there are several migration folders (migrations, {SERVICE}); choose one with --folder"
    )


def test_a_folder_flag_is_relative_to_the_working_directory(root: Path) -> None:
    settings = settings_for(root, "migrations", SERVICE)

    chosen = choose_folder(settings, Path("idempotency/migrations"), cwd=root / "src" / "infra")

    assert chosen == root / SERVICE


def test_a_folder_flag_naming_an_unconfigured_folder_is_a_usage_error(root: Path) -> None:
    with pytest.raises(UsageError) as caught:
        choose_folder(settings_for(root, "migrations"), Path("db"), cwd=root)

    assert str(caught.value) == "db is not a configured migrations folder; use one of: migrations"


def test_files_sharing_a_version_in_a_folder_are_found_by_number(root: Path) -> None:
    write_migrations(root / "migrations", "010_add_widgets.sql", "0010_add_gadgets.sql")
    write_migrations(root / SERVICE, "001_create_idempotency_keys.sql")

    groups = catalog_of(root, "migrations", SERVICE).duplicates()

    assert [[e.name for e in group] for group in groups] == [
        ["0010_add_gadgets", "010_add_markets_index", "010_add_widgets"]
    ]


def test_a_catalog_with_a_duplicate_version_is_refused_naming_the_files_and_the_fix(
    root: Path,
) -> None:
    write_migrations(root / "migrations", "010_add_widgets.sql")
    catalog = catalog_of(root, "migrations")

    with pytest.raises(DuplicateVersionError) as caught:
        catalog.refuse_duplicates()

    assert caught.value.exit_code == ExitCode.USAGE
    assert str(caught.value) == (
        "migrations/010_add_markets_index.sql and migrations/010_add_widgets.sql share version "
        "010; nothing was run; give the one not applied yet (`backout status` shows which) the "
        "next free version: rename it to 011_<description>.sql and change its `-- Migration:` line"
    )
    assert caught.value.paths == (
        root / "migrations" / "010_add_markets_index.sql",
        root / "migrations" / "010_add_widgets.sql",
    )


def test_three_files_of_one_version_are_all_named(root: Path) -> None:
    write_migrations(root / "migrations", "001_a.sql", "001_b.sql")

    with pytest.raises(DuplicateVersionError) as caught:
        catalog_of(root, "migrations").refuse_duplicates()

    assert caught.value.message == (
        "migrations/001_a.sql, migrations/001_b.sql and migrations/001_create_jobs.sql share "
        "version 001; nothing was run"
    )


def test_duplicates_are_refused_only_in_the_folders_asked_about(root: Path) -> None:
    write_migrations(root / SERVICE, "001_a.sql", "001_b.sql")
    catalog = catalog_of(root, "migrations", SERVICE)

    assert catalog.refuse_duplicates([root / "migrations"]) is catalog
    with pytest.raises(DuplicateVersionError):
        catalog.refuse_duplicates([root / SERVICE])
    with pytest.raises(DuplicateVersionError):
        executable_catalog(settings_for(root, "migrations", SERVICE))


def test_the_same_version_in_two_folders_is_no_duplicate(root: Path) -> None:
    write_migrations(root / SERVICE, "001_create_idempotency_keys.sql")
    catalog = catalog_of(root, "migrations", SERVICE)

    assert catalog.duplicates() == []
    assert catalog.refuse_duplicates() is catalog


def test_a_bare_version_two_files_of_one_folder_share_names_the_duplicate(root: Path) -> None:
    write_migrations(root / "migrations", "010_add_widgets.sql")

    with pytest.raises(DuplicateVersionError) as caught:
        catalog_of(root, "migrations").resolve("010", cwd=root)

    assert caught.value.message.endswith("share version 010; nothing was run")


def test_the_next_version_keeps_the_width_of_timestamp_versions(root: Path) -> None:
    write_migrations(root / "stamped", "20260115093000_add_widgets.sql", "001_first.sql")

    assert catalog_of(root, "stamped").next_version(root / "stamped") == "20260115093001"


def test_a_migration_that_links_out_of_its_folder_is_refused(root: Path) -> None:
    elsewhere = root / "secrets" / "011_read_me.sql"
    write_migrations(root / "secrets", "011_read_me.sql")
    (root / "migrations" / "011_read_me.sql").symlink_to(elsewhere)

    with pytest.raises(UsageError) as caught:
        discover(root, [root / "migrations"])

    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.message == (
        f"migrations/011_read_me.sql links to {elsewhere}, outside the migrations folder migrations"
    )


def test_a_link_that_stays_inside_its_folder_is_a_migration(root: Path) -> None:
    (root / "migrations" / "011_again.sql").symlink_to(root / "migrations" / "001_create_jobs.sql")

    found = discover(root, [root / "migrations"])

    assert "011_again" in [e.name for e in found.entries]
