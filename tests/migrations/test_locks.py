"""The locks a statement takes, read from its parse tree; PostgreSQL itself confirms each case.

Every case in ``IN_A_TRANSACTION`` is checked twice: against the expected modes, and against
``pg_locks`` after running the statement in a transaction on a real server (rolled back).
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import TupleRow

from backout.migrations.locks import LockMode, LockRequest, conflicts, lock_requests
from backout.migrations.statements import split
from tests import pg

AS = LockMode.ACCESS_SHARE
RS = LockMode.ROW_SHARE
RE = LockMode.ROW_EXCLUSIVE
SUE = LockMode.SHARE_UPDATE_EXCLUSIVE
S = LockMode.SHARE
SRE = LockMode.SHARE_ROW_EXCLUSIVE
E = LockMode.EXCLUSIVE
AE = LockMode.ACCESS_EXCLUSIVE

SETUP = """
CREATE SCHEMA app;
CREATE TABLE accounts (id int PRIMARY KEY, name text);
CREATE TABLE events (id int PRIMARY KEY, account_id int, payload text);
CREATE INDEX events_account_idx ON events (account_id);
ALTER TABLE events ADD CONSTRAINT events_payload_present CHECK (payload IS NOT NULL) NOT VALID;
CREATE TABLE app.orders (id int PRIMARY KEY, account_id int);
CREATE TABLE "Mixed Case" (id int);
CREATE TABLE archive (id int);
CREATE RULE archive_frozen AS ON UPDATE TO archive DO INSTEAD NOTHING;
CREATE VIEW account_names AS SELECT name FROM accounts;
CREATE MATERIALIZED VIEW totals AS SELECT account_id, count(*) AS n FROM events GROUP BY 1;
CREATE UNIQUE INDEX totals_account ON totals (account_id);
CREATE SEQUENCE tickets;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER events_touch BEFORE UPDATE ON events FOR EACH ROW EXECUTE FUNCTION touch();
CREATE POLICY own ON accounts USING (true);
CREATE TABLE measurements (at date, v int) PARTITION BY RANGE (at);
CREATE TABLE measurements_2024 PARTITION OF measurements
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE measurements_2025 (at date, v int);
"""

IN_A_TRANSACTION: list[tuple[str, dict[str, LockMode]]] = [
    # DROP: the object itself; an index only by its own name (its table is locked too).
    ('DROP TABLE "Mixed Case"', {'"Mixed Case"': AE}),
    ("DROP TABLE app.orders, archive", {"app.orders": AE, "archive": AE}),
    ("DROP VIEW account_names", {"account_names": AE}),
    ("DROP MATERIALIZED VIEW totals", {"totals": AE}),
    ("DROP SEQUENCE tickets", {"tickets": AE}),
    ("DROP INDEX events_account_idx", {"events_account_idx": AE}),
    ("DROP TRIGGER events_touch ON events", {"events": AE}),
    ("DROP RULE archive_frozen ON archive", {"archive": AE}),
    ("DROP POLICY own ON accounts", {"accounts": AE}),
    ("TRUNCATE events, app.orders", {"events": AE, "app.orders": AE}),
    # ALTER TABLE: the strongest subcommand wins; a foreign key locks the table it references.
    ("ALTER TABLE events ADD COLUMN kind text", {"events": AE}),
    (
        "ALTER TABLE events ADD CONSTRAINT events_account_fk"
        " FOREIGN KEY (account_id) REFERENCES accounts NOT VALID",
        {"events": SRE, "accounts": SRE},
    ),
    (
        "ALTER TABLE events ADD COLUMN owner int REFERENCES accounts",
        {"events": AE, "accounts": SRE},
    ),
    ("ALTER TABLE events VALIDATE CONSTRAINT events_payload_present", {"events": SUE}),
    ("ALTER TABLE events ALTER COLUMN payload SET STATISTICS 500", {"events": SUE}),
    ("ALTER TABLE events SET (fillfactor = 70)", {"events": SUE}),
    ("ALTER TABLE events CLUSTER ON events_pkey", {"events": SUE}),
    ("ALTER TABLE events SET WITHOUT CLUSTER", {"events": SUE}),
    ("ALTER TABLE events DISABLE TRIGGER events_touch", {"events": SRE}),
    (
        "ALTER TABLE events ALTER COLUMN payload SET STATISTICS 500,"
        " ALTER COLUMN payload SET NOT NULL",
        {"events": AE},
    ),
    (
        "ALTER TABLE measurements ATTACH PARTITION measurements_2025"
        " FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
        {"measurements": SUE, "measurements_2025": AE},
    ),
    (
        "ALTER TABLE measurements DETACH PARTITION measurements_2024",
        {"measurements": AE, "measurements_2024": AE},
    ),
    ("ALTER INDEX events_account_idx SET (fillfactor = 80)", {"events_account_idx": SUE}),
    ("ALTER INDEX events_account_idx RENAME TO events_by_account", {"events_account_idx": SUE}),
    ("ALTER TABLE events RENAME TO happenings", {"events": AE}),
    ("ALTER TABLE events RENAME COLUMN payload TO body", {"events": AE}),
    ("ALTER TABLE app.orders SET SCHEMA public", {"app.orders": AE}),
    ("ALTER SEQUENCE tickets RESTART", {"tickets": SRE}),
    # CREATE: what already exists and is referenced, read or attached to.
    ("CREATE INDEX events_payload_idx ON events (payload)", {"events": S}),
    ("CREATE TABLE invoices (id int, account_id int REFERENCES accounts)", {"accounts": SRE}),
    (
        "CREATE TABLE measurements_2026 PARTITION OF measurements"
        " FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
        {"measurements": AE},
    ),
    ("CREATE TABLE events_copy (LIKE events)", {"events": AS}),
    (
        "CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts"
        " FOR EACH ROW EXECUTE FUNCTION touch()",
        {"accounts": SRE},
    ),
    ("CREATE RULE accounts_frozen AS ON UPDATE TO accounts DO INSTEAD NOTHING", {"accounts": AE}),
    ("CREATE POLICY mine ON events USING (true)", {"events": AE}),
    (
        "CREATE VIEW account_events AS SELECT a.name, e.payload FROM accounts a JOIN events e"
        " ON e.account_id = a.id",
        {"accounts": AS, "events": AS},
    ),
    ("CREATE MATERIALIZED VIEW names AS SELECT name FROM accounts", {"accounts": AS}),
    ("CREATE TABLE orders_copy AS SELECT * FROM app.orders", {"app.orders": AS}),
    ("SELECT * INTO orders_copy FROM app.orders", {"app.orders": AS}),
    ("COMMENT ON TABLE events IS 'what happened'", {"events": SUE}),
    ("COMMENT ON COLUMN app.orders.id IS 'the order'", {"app.orders": SUE}),
    ("COMMENT ON CONSTRAINT events_payload_present ON events IS 'x'", {"events": AS}),
    ("COMMENT ON TRIGGER events_touch ON events IS 'x'", {"events": AS}),
    ("COMMENT ON INDEX events_account_idx IS 'x'", {"events_account_idx": SUE}),
    # Rows: ROW EXCLUSIVE on what is written, ACCESS SHARE on what is only read.
    (
        "INSERT INTO events (id, account_id) SELECT id, id FROM accounts",
        {"events": RE, "accounts": AS},
    ),
    (
        "UPDATE events SET payload = 'x' FROM accounts WHERE accounts.id = events.account_id",
        {"events": RE, "accounts": AS},
    ),
    (
        "DELETE FROM app.orders WHERE account_id IN (SELECT id FROM accounts)",
        {"app.orders": RE, "accounts": AS},
    ),
    (
        "MERGE INTO accounts a USING app.orders o ON a.id = o.id WHEN MATCHED THEN DELETE",
        {"accounts": RE, "app.orders": AS},
    ),
    (
        "WITH gone AS (DELETE FROM events RETURNING id) INSERT INTO archive SELECT id FROM gone",
        {"events": RE, "archive": RE},
    ),
    (
        "SELECT * FROM accounts JOIN events ON true FOR UPDATE OF accounts",
        {"accounts": RS, "events": AS},
    ),
    ('SELECT count(*) FROM "Mixed Case"', {'"Mixed Case"': AS}),
    # Explicit locks and maintenance.
    ("LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE", {"accounts": SRE}),
    ("LOCK events, app.orders", {"events": AE, "app.orders": AE}),
    ("REFRESH MATERIALIZED VIEW totals", {"totals": AE}),
    ("REFRESH MATERIALIZED VIEW CONCURRENTLY totals", {"totals": E}),
    ("ANALYZE events", {"events": SUE}),
    ("CLUSTER events USING events_pkey", {"events": AE}),
    ("REINDEX TABLE events", {"events": S}),
    ("REINDEX INDEX events_account_idx", {"events_account_idx": AE}),
]

OUTSIDE_A_TRANSACTION: list[tuple[str, dict[str, LockMode]]] = [
    ("DROP INDEX CONCURRENTLY events_account_idx", {"events_account_idx": SUE}),
    ("CREATE INDEX CONCURRENTLY events_payload_idx ON events (payload)", {"events": SUE}),
    ("REINDEX TABLE CONCURRENTLY events", {"events": SUE}),
    ("REINDEX INDEX CONCURRENTLY events_account_idx", {"events_account_idx": SUE}),
    ("VACUUM events", {"events": SUE}),
    ("VACUUM (ANALYZE) events, accounts", {"events": SUE, "accounts": SUE}),
    ("VACUUM FULL events", {"events": AE}),
    ("VACUUM (FULL false) events", {"events": SUE}),
    (
        "ALTER TABLE measurements DETACH PARTITION measurements_2024 CONCURRENTLY",
        {"measurements": SUE, "measurements_2024": SUE},
    ),
]

NOTHING_BY_NAME = [
    "DROP SCHEMA app CASCADE",
    "DROP TYPE mood",
    "DROP FUNCTION touch()",
    "CREATE TABLE fresh (id int)",
    "CREATE SCHEMA fresh",
    "VACUUM",
    "GRANT SELECT ON accounts TO PUBLIC",
    "SET lock_timeout = '1s'",
]


def requested(sql: str) -> list[tuple[str, LockMode]]:
    (statement,) = split(sql)
    return [(request.relation, request.mode) for request in lock_requests(statement)]


@pytest.mark.parametrize(("sql", "expected"), IN_A_TRANSACTION + OUTSIDE_A_TRANSACTION)
def test_a_statement_requests_the_strongest_lock_per_relation_in_order(
    sql: str, expected: dict[str, LockMode]
) -> None:
    assert requested(sql) == list(expected.items())


@pytest.mark.parametrize("sql", NOTHING_BY_NAME)
def test_statements_that_lock_no_relation_by_name_request_nothing(sql: str) -> None:
    assert requested(sql) == []


def test_a_relation_named_twice_is_requested_once_at_its_strongest() -> None:
    assert requested("INSERT INTO events SELECT * FROM events") == [("events", RE)]
    assert requested("ALTER TABLE events ALTER payload SET STATISTICS 5, ADD COLUMN kind text") == [
        ("events", AE)
    ]


def test_with_query_names_are_not_relations_unless_qualified() -> None:
    assert requested("WITH accounts AS (SELECT 1) SELECT * FROM accounts, app.accounts") == [
        ("app.accounts", AS)
    ]


def test_names_are_quoted_as_postgresql_quotes_them() -> None:
    assert requested('TRUNCATE "Events", "select", app."order", "plain"') == [
        ('"Events"', AE),
        ('"select"', AE),
        ('app."order"', AE),
        ("plain", AE),
    ]


def test_storage_parameters_that_change_how_a_view_reads_take_access_exclusive() -> None:
    assert requested("ALTER VIEW account_names SET (security_barrier = true)") == [
        ("account_names", AE)
    ]


def test_lock_request_carries_the_relation_and_mode() -> None:
    (statement,) = split("LOCK accounts IN ROW SHARE MODE")

    assert lock_requests(statement) == (LockRequest("accounts", RS),)


def test_modes_are_spelled_as_pg_locks_and_lock_table_spell_them() -> None:
    assert [(mode.value, mode.sql, mode.strength) for mode in (AS, SUE, AE)] == [
        ("AccessShareLock", "ACCESS SHARE", 1),
        ("ShareUpdateExclusiveLock", "SHARE UPDATE EXCLUSIVE", 4),
        ("AccessExclusiveLock", "ACCESS EXCLUSIVE", 8),
    ]


CONFLICT_TABLE = """
                         AS RS RE SUE S SRE E AE
access share             .  .  .  .   . .   . X
row share                .  .  .  .   . .   X X
row exclusive            .  .  .  .   X X   X X
share update exclusive   .  .  .  X   X X   X X
share                    .  .  X  X   . X   X X
share row exclusive      .  .  X  X   X X   X X
exclusive                .  X  X  X   X X   X X
access exclusive         X  X  X  X   X X   X X
"""
"""PostgreSQL's "Conflicting Lock Modes" table, as the documentation draws it."""


def test_conflicts_follow_postgresql_s_table() -> None:
    rows = [line.split() for line in CONFLICT_TABLE.strip().splitlines()[1:]]
    drawn = {
        (held, wanted): mark == "X"
        for held, row in zip(LockMode, rows, strict=True)
        for wanted, mark in zip(LockMode, row[-8:], strict=True)
    }

    assert {pair: conflicts(*pair) for pair in drawn} == drawn
    assert all(conflicts(a, b) == conflicts(b, a) for a, b in drawn)


# --- against PostgreSQL ------------------------------------------------------------------


@pytest.fixture(scope="module")
def locks_database(postgres_server: pg.Server, template_database: str) -> Iterator[str]:
    name = f"{template_database}_locks"
    with pg.scratch_database(
        postgres_server.url, name, template=template_database, setup=SETUP
    ) as url:
        yield url


def strongest_held(conn: psycopg.Connection[TupleRow], sql: str) -> dict[int, str]:
    """Run ``sql`` in a transaction; the strongest mode this session then holds per relation."""
    conn.execute(sql.encode())
    held: dict[int, str] = {}
    for oid, mode in conn.execute(
        "SELECT relation::int, mode FROM pg_locks"
        " WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted"
    ):
        if mode in {m.value for m in LockMode} and (
            oid not in held or LockMode(mode).strength > LockMode(held[oid]).strength
        ):
            held[oid] = mode
    return held


@pytest.mark.db
@pytest.mark.parametrize(("sql", "expected"), IN_A_TRANSACTION)
def test_postgresql_holds_the_predicted_lock_on_each_relation(
    locks_database: str, sql: str, expected: dict[str, LockMode]
) -> None:
    with psycopg.connect(locks_database) as conn:
        oids = {
            name: conn.execute("SELECT to_regclass(%s)::int", (name,)).fetchone()
            for name in expected
        }
        conn.rollback()
        held = strongest_held(conn, sql)
        conn.rollback()

    assert None not in oids.values(), oids
    predicted = dict(requested(sql))
    assert {name: held.get(row[0]) for name, row in oids.items() if row} == {
        name: mode.value for name, mode in predicted.items()
    }
