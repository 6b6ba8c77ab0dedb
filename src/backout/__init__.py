"""backout: safe, documented rollbacks and incident records for raw-SQL PostgreSQL migrations."""

__version__ = "0.1.0"
