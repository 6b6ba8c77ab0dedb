"""What backout does to a database: one operation skeleton and, on it, apply, baseline, status,
rollback, the emergency, verify, the staging check, smoke checks, approval and backup.
Composes migrations/, database/, postmortems/ and git; never imports cli/."""
