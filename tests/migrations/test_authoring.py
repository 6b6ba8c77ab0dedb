"""Writing a new migration: its name, its seeded header, templates, and refusing to overwrite."""

from __future__ import annotations

from pathlib import Path

import pytest

from backout.errors import BackoutError, ExitCode, FileExistsRefusal, LockTimeoutError, UsageError
from backout.migrations import authoring
from backout.migrations.authoring import (
    create_migration,
    new_migration,
    plan_fix_forward,
    plan_new_migration,
    snake_case,
)
from backout.migrations.catalog import discover
from tests.helpers import settings_for, write_migrations, write_tree

EXISTING = [f"00{n}_step_{n}.sql" for n in range(1, 7)]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project whose one migrations folder holds versions 001 to 006."""
    root = tmp_path.resolve()
    write_migrations(root / "migrations", *EXISTING)
    return root


@pytest.mark.parametrize(
    ("description", "slug"),
    [
        ("Add widgets (v2)", "add_widgets_v2"),
        ("Café crème: brûlée", "cafe_creme_brulee"),
        ("  drop   OLD-index ", "drop_old_index"),
    ],
)
def test_a_description_becomes_a_snake_case_slug(description: str, slug: str) -> None:
    assert snake_case(description) == slug


def test_a_description_without_letters_or_digits_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        snake_case("!!!")

    assert str(caught.value) == (
        "description '!!!' cannot be made snake_case; "
        'use letters and digits, e.g. backout new "add widgets"'
    )


def test_new_migration_writes_the_next_file_with_the_seed_header(root: Path) -> None:
    plan = new_migration(
        settings_for(root, "migrations"),
        "add widgets",
        cwd=root,
        phase="1 of 2",
        checklist="ops/checklists/add-table.md",
    )

    lines = (root / "migrations" / "007_add_widgets.sql").read_text().splitlines()
    assert plan.path == root / "migrations" / "007_add_widgets.sql"
    assert lines[:4] == [
        "-- Migration: 007_add_widgets.sql",
        "-- Purpose: add widgets",
        "-- Phase: 1 of 2",
        "-- Checklist: ops/checklists/add-table.md",
    ]
    assert "-- ROLLBACK" in lines


def test_new_migration_creates_a_missing_folder_and_starts_at_001(tmp_path: Path) -> None:
    root = tmp_path.resolve()

    plan = new_migration(settings_for(root, "db"), "create jobs", cwd=root)

    assert sorted(p.name for p in (root / "db").iterdir()) == ["001_create_jobs.sql"]
    assert plan.version == "001"


def test_new_migration_numbers_within_the_chosen_folder(root: Path) -> None:
    write_migrations(root / "service" / "migrations", "001_create_keys.sql")
    settings = settings_for(root, "migrations", "service/migrations")

    plan = new_migration(settings, "add expiry", cwd=root, folder=Path("service/migrations"))

    assert plan.path == root / "service" / "migrations" / "002_add_expiry.sql"


def test_a_description_already_in_the_folder_is_a_usage_error(root: Path) -> None:
    settings = settings_for(root, "migrations")
    new_migration(settings, "add widgets", cwd=root)

    with pytest.raises(UsageError) as caught:
        new_migration(settings, "Add widgets", cwd=root)

    assert str(caught.value) == (
        "migrations/007_add_widgets.sql already has the description 'add_widgets'; "
        "choose a description that says what this migration does"
    )
    assert sorted(p.name for p in (root / "migrations").iterdir()) == [
        *EXISTING,
        "007_add_widgets.sql",
    ]


def test_a_project_template_overrides_the_shipped_one(root: Path) -> None:
    write_tree(
        root,
        {"templates/migration.sql.j2": "-- Migration: {{ filename }}\n-- Owner: data team\n"},
    )

    plan = new_migration(settings_for(root, "migrations"), "add widgets", cwd=root)

    assert plan.path.read_text() == "-- Migration: 007_add_widgets.sql\n-- Owner: data team\n"


def test_a_templates_folder_without_the_migration_template_uses_the_shipped_one(
    root: Path,
) -> None:
    write_tree(root, {"templates/postmortem.md.j2": "# {{ title }}\n"})
    catalog = discover(root, (root / "migrations",))
    folder = root / "migrations"

    with_project = plan_new_migration(catalog, folder, "add widgets", templates=root / "templates")
    shipped_only = plan_new_migration(catalog, folder, "add widgets", templates=None)

    assert with_project.content == shipped_only.content
    assert with_project.content.startswith("-- Migration: 007_add_widgets.sql\n")


def test_an_existing_file_is_refused_and_left_untouched(root: Path) -> None:
    plan = plan_new_migration(discover(root, (root / "migrations",)), root / "migrations", "x y")
    plan.path.write_text("-- someone else's work\n")

    with pytest.raises(FileExistsRefusal) as caught:
        create_migration(plan)

    assert (caught.value.exit_code, str(caught.value)) == (
        ExitCode.REFUSED,
        f"{plan.path} already exists; choose another description",
    )
    assert plan.path.read_text() == "-- someone else's work\n"


def test_creating_the_same_plan_twice_is_refused(root: Path) -> None:
    plan = plan_new_migration(discover(root, (root / "migrations",)), root / "migrations", "x y")
    create_migration(plan)

    with pytest.raises(FileExistsRefusal) as caught:
        create_migration(plan)

    assert caught.value.exit_code == 4
    assert plan.path.read_text() == plan.content


def test_a_folder_in_the_way_of_the_new_file_is_refused(root: Path) -> None:
    (root / "migrations" / "007_add_widgets.sql").mkdir()

    with pytest.raises(FileExistsRefusal) as caught:
        new_migration(settings_for(root, "migrations"), "add widgets", cwd=root)

    assert caught.value.path == root / "migrations" / "007_add_widgets.sql"
    assert list((root / "migrations" / "007_add_widgets.sql").iterdir()) == []


def test_a_version_taken_after_planning_moves_the_new_file_to_the_next(root: Path) -> None:
    folder = root / "migrations"
    plan = plan_new_migration(discover(root, (folder,)), folder, "add widgets")
    write_migrations(folder, "007_add_gadgets.sql")  # another branch's 007, checked out meanwhile

    path = create_migration(plan)

    assert path == folder / "008_add_widgets.sql"
    assert path.read_text().startswith("-- Migration: 008_add_widgets.sql\n")
    assert not plan.path.exists()
    assert (folder / "007_add_gadgets.sql").read_text() == "SELECT 1;\n"


def test_a_version_taken_while_the_file_is_written_moves_it_to_the_next(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = root / "migrations"
    real_write = authoring.write_exclusively

    def racing(path: Path, content: str) -> None:
        if path.name.startswith("007_"):  # something that takes no lock writes a 007 too
            (folder / "007_add_gadgets.sql").write_text("SELECT 1;\n")
        real_write(path, content)

    monkeypatch.setattr(authoring, "write_exclusively", racing)

    plan = new_migration(settings_for(root, "migrations"), "add widgets", cwd=root)

    assert plan.path == folder / "008_add_widgets.sql"
    assert sorted(p.name for p in folder.iterdir())[-2:] == [
        "007_add_gadgets.sql",
        "008_add_widgets.sql",
    ]
    assert plan.path.read_text().startswith("-- Migration: 008_add_widgets.sql\n")


def test_a_fix_forward_stub_whose_version_was_taken_takes_the_next(root: Path) -> None:
    folder = root / "migrations"
    catalog = discover(root, (folder,))
    stub = plan_fix_forward(catalog, catalog.resolve("006", root), "INC-2026-0001")
    new_migration(settings_for(root, "migrations"), "add widgets", cwd=root)  # takes 007

    path = create_migration(stub)

    assert path == folder / "008_fix_step_6.sql"
    assert path.read_text().startswith("-- Migration: 008_fix_step_6.sql\n")


def test_choosing_a_version_waits_for_the_folder_lock_and_gives_up_with_exit_5(
    root: Path,
) -> None:
    folder = root / "migrations"

    with (
        authoring.version_lock(folder),
        pytest.raises(LockTimeoutError) as caught,
        authoring.version_lock(folder, wait=0.05),
    ):
        pass  # pragma: no cover

    assert caught.value.exit_code == ExitCode.LOCKED
    assert str(caught.value) == (
        f"another backout has been choosing a version in {folder} for 0.05 s; "
        "try again; if it persists, look for a stuck backout process"
    )
    with authoring.version_lock(folder, wait=0.05):  # released: taken at once
        pass


def test_the_folder_lock_leaves_no_file_behind(root: Path) -> None:
    before = sorted((root / "migrations").iterdir())

    new_migration(settings_for(root, "migrations"), "add widgets", cwd=root)

    assert sorted((root / "migrations").iterdir()) == sorted(
        [*before, root / "migrations" / "007_add_widgets.sql"]
    )


def test_a_file_where_the_folder_should_be_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    (root / "db").write_text("not a folder\n")

    with pytest.raises(BackoutError) as caught:
        new_migration(settings_for(root, "db"), "create jobs", cwd=root)

    assert caught.value.exit_code == ExitCode.FAILED
    assert str(caught.value) == (
        f"cannot create the migrations folder {root / 'db'}: a file is where backout needs a "
        "folder; move the file away or point --migrations-dir elsewhere"
    )
