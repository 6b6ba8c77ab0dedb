"""What backout does across a fleet: one module per command that works on many databases."""
