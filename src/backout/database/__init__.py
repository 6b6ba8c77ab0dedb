"""PostgreSQL: connections and URL redaction, the migration lock, history and audit tables, the
statement runner, schema fingerprints, scratch and embedded servers. Knows nothing of incidents."""
