"""``backout emergency``: the strategy's emergency procedure, as a list of named steps.

Check it is safe, rehearse on a scratch database, confirm, open the incident, take the lock,
back up, roll back, check the schema, smoke checks, release the lock, write the fix-forward stub,
complete the postmortem (review due in 72 h), record in git, log the decision. See
:mod:`.steps` for each step and :mod:`.procedure` for how they run.
"""

from backout.operations.emergency.model import SEVERITIES, Request, Result
from backout.operations.emergency.procedure import emergency

__all__ = ["SEVERITIES", "Request", "Result", "emergency"]
