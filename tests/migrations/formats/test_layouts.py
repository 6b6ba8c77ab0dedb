"""New files in a folder of another format: `backout new` and the emergency's fix-forward stub
are written in the folder's own layout, and read back as that format's unfinished stub."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from backout.migrations.authoring import create_migration, plan_fix_forward, plan_new_migration
from backout.migrations.catalog import discover
from backout.migrations.formats.layouts import next_version
from tests.helpers import write_tree

UP, DOWN = "CREATE TABLE a (id int);", "DROP TABLE a;"
FOLDERS = {
    "goose": {"00001_a.sql": f"-- +goose Up\n{UP}\n-- +goose Down\n{DOWN}\n"},
    "sql-migrate": {"1_a.sql": f"-- +migrate Up\n{UP}\n-- +migrate Down\n{DOWN}\n"},
    "dbmate": {"20240101000000_a.sql": f"-- migrate:up\n{UP}\n-- migrate:down\n{DOWN}\n"},
    "node-pg-migrate": {
        "1715000000000_a.sql": f"-- Up Migration\n{UP}\n-- Down Migration\n{DOWN}\n"
    },
    "golang-migrate": {"000001_a.up.sql": f"{UP}\n", "000001_a.down.sql": f"{DOWN}\n"},
    "directory": {
        "2024-01-01-000000_a/up.sql": f"{UP}\n",
        "2024-01-01-000000_a/down.sql": f"{DOWN}\n",
    },
    "flyway": {"V1__a.sql": f"{UP}\n", "U1__a.sql": f"{DOWN}\n"},
    "liquibase": {
        "001_a.sql": f"--liquibase formatted sql\n\n--changeset kim:a\n{UP}\n--rollback {DOWN}\n"
    },
}


@pytest.mark.parametrize("fmt", sorted(FOLDERS))
def test_the_fix_forward_stub_is_written_in_the_folders_format_and_read_back_as_a_stub(
    tmp_path: Path, fmt: str
) -> None:
    folder = write_tree(tmp_path / "db", FOLDERS[fmt])
    catalog = discover(tmp_path, [folder], formats={folder: fmt})
    (superseded,) = catalog.in_folder(folder)

    written = create_migration(plan_fix_forward(catalog, superseded, "INC-20261126-01"))

    again = discover(tmp_path, [folder], formats={folder: fmt})
    (stub,) = [e for e in again.in_folder(folder) if e.path == written]
    migration = stub.read()
    assert (migration.format, migration.is_stub, migration.statements) == (fmt, True, ())
    assert "Incident: INC-20261126-01" in migration.comments
    assert not migration.rollback.statements
    assert stub.key > superseded.key


@pytest.mark.parametrize("fmt", sorted(FOLDERS))
def test_backout_new_writes_the_folders_layout(tmp_path: Path, fmt: str) -> None:
    folder = write_tree(tmp_path / "db", FOLDERS[fmt])
    catalog = discover(tmp_path, [folder], formats={folder: fmt})

    written = create_migration(plan_new_migration(catalog, folder, "add widgets"))

    again = discover(tmp_path, [folder], formats={folder: fmt})
    assert [e.format for e in again.in_folder(folder)] == [fmt, fmt]
    assert again.in_folder(folder)[-1].path == written


def test_timestamped_folders_get_a_timestamp_and_sequences_the_next_number() -> None:
    now = datetime(2026, 11, 26, 3, 4, 5, tzinfo=UTC)
    assert next_version("goose", ["00001", "00002"], now) == "00003"
    assert next_version("goose", ["20240101000000"], now) == "20261126030405"
    assert next_version("dbmate", [], now) == "20261126030405"
    assert next_version("flyway", ["1", "1.2"], now) == "2"
    assert next_version("directory", [], now) == "2026-11-26-030405"
    assert next_version("liquibase", ["003.01", "003.02"], now) == "004"
