"""The migration files: formats, SQL statements (pglast), rollback sources, the catalog of
folders, lint, and authoring. Pure: reads files, never a database; imports config and errors."""
