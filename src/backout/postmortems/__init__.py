"""Incident records: one model for reading and writing, the collection from the folder and
branches, states, deadlines, checks, calendar, digest, reminders, the decisions log."""
