"""Fleet-wide rollbacks: one migration rolled back on many databases, a canary then waves.

:mod:`.engine` runs waves of work with bounded concurrency and stops at the first failure (pure
of SQL); :mod:`.survey` says where the migration is applied; :mod:`.rollback` and
:mod:`.emergency` are the two commands across a fleet, the emergency with one incident
(:mod:`.incident`) for every target.
"""
