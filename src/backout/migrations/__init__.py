"""The migration files: formats, SQL statements (pglast), rollback sources, the catalog of
folders, lint, authoring. Pure: never a database; imports only config, errors and templating."""
