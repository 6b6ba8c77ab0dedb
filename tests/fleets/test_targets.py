"""A fleet's targets: the targets file's lines, configured fleets and shards."""

from __future__ import annotations

from pathlib import Path

import pytest

from backout.config import load_settings
from backout.errors import UsageError
from backout.fleets.targets import address, fleet_from, parse_shard, read_targets, shard_of

ENV = {"EU1_URL": "postgresql://app:s3cret@eu1.db/shop", "US_URL": "postgresql://us.db/shop"}


def test_a_line_is_a_name_and_a_url_or_just_a_url() -> None:
    text = """
    # tenants of the shop
    eu1 $EU1_URL
    us  ${US_URL}   # read from the environment
    postgresql://ap.db:5433/shop
    """
    targets = read_targets(text, "fleet.txt", ENV)

    assert [t.name for t in targets] == ["eu1", "us", "ap.db-shop"]
    assert targets[0].url == ENV["EU1_URL"]
    assert targets[0].display == "postgresql://app:***@eu1.db/shop"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("eu1 $MISSING_URL", "fleet.txt:1: the URL comes from $MISSING_URL, which is not set"),
        ("a postgresql://x/db\na postgresql://y/db", "fleet.txt:2: target 'a' is already named"),
        ("a b c", "fleet.txt:1: expected `name url` or `url`, found 3 words"),
        ("../up postgresql://x/db", "fleet.txt:1: '../up' cannot name a target"),
        ("eu1 $bad-name", "fleet.txt:1: '$bad-name' is not an environment variable"),
        ("# nothing\n\n", "fleet.txt lists no targets"),
        ("eu1 mysql://x/db", "fleet.txt:1 is not a PostgreSQL URL"),
    ],
)
def test_a_bad_line_is_named_with_its_file_and_line(text: str, said: str) -> None:
    with pytest.raises(UsageError) as caught:
        read_targets(text, "fleet.txt", ENV)

    assert caught.value.message.startswith(said)


def test_a_bad_url_from_the_environment_never_shows_its_password() -> None:
    env = {"BAD": "postgresql://app:hunter2@a@b/db"}
    with pytest.raises(UsageError) as caught:
        read_targets("eu1 $BAD", "fleet.txt", env)

    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "line",
    [
        "password=hunter2 dbname=shop",
        "postgresql://app:hunter2@eu1.db/shop $US_URL",
        "postgresql://app:hunter2@eu1.db/shop eu1",
    ],
)
def test_a_connection_string_or_url_where_the_name_goes_is_refused_without_its_password(
    line: str,
) -> None:
    with pytest.raises(UsageError) as caught:
        read_targets(line, "fleet.txt", ENV)

    assert caught.value.message.startswith("fleet.txt:1: ")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:hunter2@eu1.db:5433/shop", "eu1.db:5433/shop"),
        ("postgresql://app@eu1.db/shop?password=hunter2", "eu1.db/shop"),
        ("postgresql://postgres:@/tenant7?host=/tmp/bo-pg", "local/tenant7"),
        ("host=eu1.db dbname=shop password=hunter2", "eu1.db/shop"),
    ],
)
def test_a_targets_address_is_its_host_and_database_never_its_user_or_password(
    url: str, shown: str
) -> None:
    assert address(url) == shown


def test_shards_cover_every_target_once_whatever_the_order_of_the_file() -> None:
    names = [f"tenant{i:02d}" for i in range(10)]
    slices = [shard_of(names, i, 3) for i in (1, 2, 3)]

    assert sorted(n for s in slices for n in s) == sorted(names)
    assert [len(s) for s in slices] == [4, 3, 3]
    assert shard_of(list(reversed(names)), 2, 3) == slices[1]


@pytest.mark.parametrize("text", ["0/3", "4/3", "1", "a/b", "1/0"])
def test_a_shard_is_i_of_n(text: str) -> None:
    with pytest.raises(UsageError, match="is not a slice I/N"):
        parse_shard(text)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_configured_fleet_reads_its_file_relative_to_the_configuration(tmp_path: Path) -> None:
    write(tmp_path / "backout.toml", '[fleets.shop]\ntargets = "ops/shop.txt"\nconcurrency = 8\n')
    (tmp_path / "ops").mkdir()
    write(tmp_path / "ops" / "shop.txt", "eu1 $EU1_URL\nus $US_URL\n")
    settings = load_settings(tmp_path, environ={})

    fleet = fleet_from(settings, ENV, fleet_name="shop")

    assert fleet is not None
    assert (fleet.name, fleet.names, fleet.concurrency) == ("shop", ("eu1", "us"), 8)
    assert fleet.waves == ("10%", "rest")


def test_a_configured_fleet_may_list_its_targets_and_waves(tmp_path: Path) -> None:
    write(
        tmp_path / "backout.toml",
        '[fleets.shop]\ntargets = ["eu1 $EU1_URL", "us $US_URL"]\nwaves = ["1", "rest"]\n',
    )
    settings = load_settings(tmp_path, environ={})

    fleet = fleet_from(settings, ENV, fleet_name="shop", shard="2/2")

    assert fleet is not None
    assert (fleet.names, fleet.waves, fleet.shard) == (("us",), ("1", "rest"), (2, 2))


def test_a_fleet_configured_in_pyproject_toml(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        '[tool.backout.fleets.shop]\ntargets = ["eu1 $EU1_URL"]\nrequire_approval = true\n',
    )
    settings = load_settings(tmp_path, environ={})

    fleet = fleet_from(settings, ENV, fleet_name="shop")

    assert fleet is not None
    assert (fleet.names, fleet.require_approval) == (("eu1",), True)


def test_fleet_choices_that_cannot_work_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "backout.toml", '[fleets.shop]\ntargets = ["eu1 $EU1_URL"]\n')
    settings = load_settings(tmp_path, environ={})

    with pytest.raises(UsageError, match="unknown fleet 'shops'"):
        fleet_from(settings, ENV, fleet_name="shops")
    with pytest.raises(UsageError, match="both --targets and --fleet"):
        fleet_from(settings, ENV, fleet_name="shop", targets_file=tmp_path / "x")
    with pytest.raises(UsageError, match="--shard needs a fleet"):
        fleet_from(settings, ENV, shard="1/2")
    with pytest.raises(UsageError, match="targets file not found"):
        fleet_from(settings, ENV, targets_file=tmp_path / "missing.txt")
    assert fleet_from(settings, ENV) is None


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ("targets = []", "needs targets"),
        ('targets = ["a $A"]\nwave = 3', "unknown key 'wave'"),
        ('targets = ["a $A"]\nconcurrency = "4"', "concurrency must be a whole number"),
        ('targets = ["a $A"]\nwaves = "rest"', "waves must be a list"),
    ],
)
def test_a_bad_fleet_table_is_named(tmp_path: Path, table: str, said: str) -> None:
    write(tmp_path / "backout.toml", f"[fleets.shop]\n{table}\n")

    with pytest.raises(UsageError, match=said):
        load_settings(tmp_path, environ={})


def test_a_fleet_cannot_have_more_slices_than_targets(tmp_path: Path) -> None:
    write(tmp_path / "backout.toml", '[fleets.shop]\ntargets = ["eu1 $EU1_URL", "us $US_URL"]\n')
    settings = load_settings(tmp_path, environ={})

    with pytest.raises(UsageError, match="fleet shop has 2 targets, fewer than 3 slices"):
        fleet_from(settings, ENV, fleet_name="shop", shard="3/3")
