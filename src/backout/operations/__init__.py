"""What backout does to a database: one operation skeleton and, on it, apply, baseline, status,
rollback, emergency, verify, the staging check, smoke checks, approval and backup."""
