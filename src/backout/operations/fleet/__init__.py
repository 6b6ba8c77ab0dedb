"""What backout does across a fleet: one migration rolled back on many databases, a canary then
waves, and the fleet's status and restores.

:mod:`.engine` runs waves of work with bounded concurrency and stops at the first failure (pure
of SQL); :mod:`.survey` says where the migration is applied; :mod:`.rollback` and
:mod:`.emergency` are the two commands across a fleet, the emergency with one incident
(:mod:`.incident`) for every target; :mod:`.status` reads every target's history into one
table; :mod:`.restore` puts a fleet incident's backups back, target by target.
"""
