"""Fixtures the fleet tests share: several databases of one server (:mod:`.fleet_databases`)."""

from tests.fleets.fleet_databases import databases  # noqa: F401  (a shared fixture)
