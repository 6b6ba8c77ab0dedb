"""PostgreSQL: connections, the lock, history and audit tables, the runner, fingerprints, scratch
and embedded servers. Imports config, errors, migrations/; never operations/, postmortems/, cli/."""
