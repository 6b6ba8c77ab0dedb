"""A project whose later migration builds on an earlier migration's table: 003 adds a foreign
key, a view, a trigger and a column on 001's ``events`` (the shapes a rollback of 001 reaches
into). The rollback of 001 is written twice: plain (it fails on the dependencies) and with
``CASCADE`` (it removes what 003 made)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.sample_project import write

EVENTS = "CREATE TABLE events (id BIGINT PRIMARY KEY, kind TEXT NOT NULL, payload JSONB);"
ORDERS = "CREATE TABLE orders (id BIGINT PRIMARY KEY, event_id BIGINT);"
LINKS = """
ALTER TABLE orders ADD CONSTRAINT orders_event_fk FOREIGN KEY (event_id) REFERENCES events (id);
CREATE VIEW event_counts AS SELECT kind, count(*) AS n FROM events GROUP BY kind;
CREATE FUNCTION events_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER events_touch BEFORE UPDATE ON events
  FOR EACH ROW EXECUTE FUNCTION events_touch();
ALTER TABLE events ADD COLUMN note TEXT;
"""
UNLINK = """DROP TRIGGER IF EXISTS events_touch ON events;
DROP FUNCTION IF EXISTS events_touch();
DROP VIEW IF EXISTS event_counts;
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_event_fk;
ALTER TABLE events DROP COLUMN IF EXISTS note;"""

LATER_OBJECTS = {
    ("table constraint", "orders_event_fk on public.orders"),
    ("view", "public.event_counts"),
    ("trigger", "events_touch on public.events"),
    ("table column", "public.events.note"),
}
"""What 003 made on 001's table, as PostgreSQL names them: a rollback of 001 with CASCADE
removes every one."""


def linked(project: Path, *, cascade: bool) -> Path:
    """Replace the sample migrations with 001-003 above; 001's rollback with or without CASCADE."""
    shutil.rmtree(project / "migrations")
    (project / "migrations").mkdir()
    drop = "DROP TABLE events CASCADE;" if cascade else "DROP TABLE events;"
    write(project, "001_create_events.sql", EVENTS, drop)
    write(project, "002_create_orders.sql", ORDERS, "DROP TABLE orders;")
    write(project, "003_link_orders_to_events.sql", LINKS, UNLINK)
    return project
