"""The fleet options as a :class:`~backout.fleets.targets.Fleet`, for the commands that work on
many databases."""

from __future__ import annotations

import os
from dataclasses import replace

import typer

from backout.cli import options
from backout.cli.application import state
from backout.errors import UsageError
from backout.fleets.targets import Fleet
from backout.fleets.targets import fleet_from as _fleet_from
from backout.fleets.waves import parse_waves


def fleet_of(ctx: typer.Context, given: options.Fleet) -> Fleet | None:
    """The fleet ``--targets``/``--fleet`` name, sliced by ``--shard``, with ``--waves`` and
    ``--concurrency`` when given; None when the command works on one database."""
    fleet = _fleet_from(
        state(ctx).settings,
        os.environ,
        targets_file=given.targets,
        fleet_name=given.fleet,
        shard=given.shard,
    )
    if not isinstance(given, options.Rollout):
        return fleet
    if fleet is None:
        if given.waves is not None or given.concurrency is not None:
            raise UsageError(
                "--waves and --concurrency need a fleet", hint="add --targets FILE or --fleet NAME"
            )
        return None
    if given.waves is not None:
        fleet = replace(fleet, waves=parse_waves(given.waves))
    if given.concurrency is not None:
        fleet = replace(fleet, concurrency=given.concurrency)
    return fleet


def one_database_or_fleet(connection: options.Connection, fleet: Fleet | None) -> None:
    """Refuse a fleet together with one database's options."""
    if fleet is not None and (connection.database_url or connection.env):
        raise UsageError(
            "a fleet was given together with --database-url or --env",
            hint="give one: the fleet's targets, or one database",
        )
