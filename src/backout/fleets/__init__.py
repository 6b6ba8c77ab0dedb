"""Fleets: the same migrations on many databases (tenants, shards, regions).

:mod:`targets` reads who is in a fleet (``--targets FILE``, ``--fleet NAME``, ``--shard I/N``);
:mod:`waves` orders a fleet-wide change: a canary, then waves.
"""
