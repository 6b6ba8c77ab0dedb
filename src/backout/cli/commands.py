"""Every command of ``backout``: its name, the function (or typer of subcommands) that defines
it, and the help ``backout --help`` shows for it, in the order it shows them.

The help is the defining function's docstring, repeated here so that listing the commands
imports none of them (tests/cli/test_lazy.py checks that the two agree).
"""

from __future__ import annotations

from backout.cli.lazy import Lazy

COMMANDS: dict[str, Lazy] = {
    "init": Lazy(
        "backout.cli.project:init",
        "Set a repository up for backout: its settings, the backups ignore line, the "
        "postmortems\nfolder, and optionally a CI workflow and pre-commit hooks. Writes only "
        "what is missing.",
    ),
    "status": Lazy(
        "backout.cli.database:status",
        "Each migration's state: applied, pending, modified, missing, damaged or rolled back.\n"
        "Read-only.",
    ),
    "apply": Lazy(
        "backout.cli.database:apply",
        "Apply pending migrations in order, each in one transaction with its history row.",
    ),
    "baseline": Lazy(
        "backout.cli.database:baseline",
        "Mark pending migrations as applied without running them (a database migrated by hand).",
    ),
    "rollback": Lazy(
        "backout.cli.database:rollback",
        "Roll back one applied migration with its documented SQL (a planned, non-incident one).",
    ),
    "restore": Lazy(
        "backout.cli.restore:restore",
        "Put an incident's backed-up rows back in one transaction, parents before children.",
    ),
    "demo": Lazy(
        "backout.cli.demo:demo",
        "Play an incident on the sample migrations and an embedded PostgreSQL, in a temporary\n"
        "folder: apply, then `emergency` on 006, then print the postmortem and the review "
        "deadline.",
    ),
    "emergency": Lazy(
        "backout.cli.emergency:emergency",
        "Roll back a migration that broke production, open its incident, start the fix-forward.",
    ),
    "new": Lazy(
        "backout.cli.migrations:new",
        "Write the next migration file from the template and print its path.",
    ),
    "lint": Lazy(
        "backout.cli.migrations:lint",
        "Check migration files against the strategy's rules. Exit 3 when any error is found.",
    ),
    "guard": Lazy(
        "backout.cli.project:guard",
        "Refuse edits to migrations the main branch already holds. Exit 3 when one was "
        "changed\nor deleted.",
    ),
    "show": Lazy(
        "backout.cli.migrations:show",
        "Print a parsed migration: header, forward SQL, the exact rollback SQL, notes, checksums.",
    ),
    "check": Lazy(
        "backout.cli.staging:check",
        "The staging checklist: applied, indexes valid, constraints probed, triggers enabled, "
        "key\nqueries within budget, rollback rehearsed, breaking changes. Exit 3 when a check "
        "fails.",
    ),
    "verify": Lazy(
        "backout.cli.verify:verify",
        "Apply, roll back and apply again each migration on a scratch database, comparing the\n"
        "schema each time. Exit 3 when a rollback leaves something behind or fails.",
    ),
    "postmortems": Lazy(
        "backout.cli.postmortems:postmortems_app",
        "Review deadlines, states and action items of the postmortems in ops/postmortems.",
    ),
}
