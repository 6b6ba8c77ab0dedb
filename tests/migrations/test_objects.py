"""What a statement creates and removes, and the identity PostgreSQL gives each object.

The identities are checked against ``pg_identify_object()`` on a real server: every object the
``CREATED`` script names is in the catalog under that identity, and every ``DROP`` removes
exactly the identity it names.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import TupleRow

from backout.migrations.objects import (
    ObjectKind,
    ObjectName,
    Removal,
    creations,
    identity,
    removals,
)
from backout.migrations.parse_tree import quote_ident, split_qualified
from backout.migrations.statements import split
from tests import pg

K = ObjectKind


def created(sql: str) -> list[tuple[str, str]]:
    (statement,) = split(sql)
    return [identity(obj) for obj in creations(statement)]


def removed(sql: str) -> list[tuple[str, str, bool, bool]]:
    (statement,) = split(sql)
    return [(*identity(r.obj), r.cascade, r.missing_ok) for r in removals(statement)]


# --- names and identities ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("events", "events"),
        ("_private$1", "_private$1"),
        ("Events", '"Events"'),
        ("select", '"select"'),  # reserved
        ("int", '"int"'),  # a column-name keyword
        ("name", "name"),  # unreserved: bare
        ("1st", '"1st"'),
        ("with space", '"with space"'),
        ('say "hi"', '"say ""hi"""'),
    ],
)
def test_names_are_quoted_as_quote_ident_quotes_them(name: str, quoted: str) -> None:
    assert quote_ident(name) == quoted
    assert split_qualified(f"app.{quoted}") == ("app", name)


def test_an_unqualified_name_is_taken_to_be_in_the_given_schema() -> None:
    events = ObjectName(K.TABLE, "events")

    assert identity(events) == ("table", "public.events")
    assert identity(events, schema="App") == ("table", '"App".events')
    assert identity(ObjectName(K.TABLE, "app.events"), schema="other") == ("table", "app.events")


def test_a_domain_and_an_enum_are_both_a_type_to_postgresql() -> None:
    assert ObjectKind["DOMAIN"] is ObjectKind.TYPE
    assert created("CREATE DOMAIN positive AS int") == [("type", "public.positive")]
    assert created("CREATE TYPE mood AS ENUM ('ok')") == [("type", "public.mood")]


def test_a_function_named_without_arguments_has_an_identity_without_parentheses() -> None:
    (removal,) = removals(split("DROP FUNCTION touch")[0])

    assert removal.obj == ObjectName(K.FUNCTION, "touch")
    assert identity(removal.obj) == ("function", "public.touch")


@pytest.mark.parametrize(
    ("sql", "arguments", "function_identity"),
    [
        ("DROP FUNCTION f()", "", "public.f()"),
        ("DROP FUNCTION f(int, text)", "integer, text", "public.f(integer,pg_catalog.text)"),
        (
            'DROP FUNCTION f(varchar(20), char, "char", bool, float8, int8[])',
            'character varying, character, "char", boolean, double precision, bigint[]',
            'public.f(character varying,character,pg_catalog."char",boolean,'
            "double precision,bigint[])",
        ),
        (
            "DROP FUNCTION f(timestamptz, time, numeric(10, 2), jsonb, date)",
            "timestamp with time zone, time without time zone, numeric, jsonb, date",
            "public.f(timestamp with time zone,time without time zone,numeric,"
            "pg_catalog.jsonb,pg_catalog.date)",
        ),
        ("DROP FUNCTION f(mood, app.pair)", "mood, app.pair", "public.f(public.mood,app.pair)"),
        ("DROP FUNCTION f(a int, OUT b text)", "integer", "public.f(integer)"),
        (
            "DROP PROCEDURE p(IN a int, OUT b text)",
            "integer",
            "public.p(integer)",
        ),
    ],
)
def test_function_arguments_are_normalised_as_postgresql_prints_them(
    sql: str, arguments: str, function_identity: str
) -> None:
    (removal,) = removals(split(sql)[0])

    assert removal.obj.arguments == arguments
    assert identity(removal.obj)[1] == function_identity


# --- removals ----------------------------------------------------------------------------

REMOVALS = [
    ("DROP TABLE events", [("table", "public.events", False, False)]),
    (
        'DROP TABLE IF EXISTS events, app."Mixed Case" CASCADE',
        [("table", "public.events", True, True), ("table", 'app."Mixed Case"', True, True)],
    ),
    ("DROP VIEW v", [("view", "public.v", False, False)]),
    ("DROP MATERIALIZED VIEW app.mv", [("materialized view", "app.mv", False, False)]),
    ("DROP SEQUENCE s", [("sequence", "public.s", False, False)]),
    ("DROP INDEX CONCURRENTLY IF EXISTS i", [("index", "public.i", False, True)]),
    ("DROP FOREIGN TABLE ft", [("foreign table", "public.ft", False, False)]),
    ("DROP TRIGGER trg ON app.t", [("trigger", "trg on app.t", False, False)]),
    ("DROP RULE r ON t CASCADE", [("rule", "r on public.t", True, False)]),
    ('DROP POLICY "Own Rows" ON t', [("policy", '"Own Rows" on public.t', False, False)]),
    (
        "DROP FUNCTION f(int), app.g",
        [("function", "public.f(integer)", False, False), ("function", "app.g", False, False)],
    ),
    ("DROP ROUTINE f(int)", [("function", "public.f(integer)", False, False)]),
    (
        "DROP TYPE mood, app.pair CASCADE",
        [("type", "public.mood", True, False), ("type", "app.pair", True, False)],
    ),
    ("DROP DOMAIN positive", [("type", "public.positive", False, False)]),
    ('DROP SCHEMA "Odd Schema" CASCADE', [("schema", '"Odd Schema"', True, False)]),
    ("DROP EXTENSION pg_trgm", [("extension", "pg_trgm", False, False)]),
    (
        "ALTER TABLE t DROP COLUMN IF EXISTS payload CASCADE, ADD COLUMN x int,"
        ' DROP CONSTRAINT "T Check"',
        [
            ("table column", "public.t.payload", True, True),
            ("table constraint", '"T Check" on public.t', False, False),
        ],
    ),
    ("DROP DATABASE d", []),
    ("DROP ROLE r", []),
    ("DELETE FROM t", []),
]


@pytest.mark.parametrize(("sql", "expected"), REMOVALS)
def test_what_a_statement_itself_drops(
    sql: str, expected: list[tuple[str, str, bool, bool]]
) -> None:
    assert removed(sql) == expected


def test_a_removal_keeps_the_names_as_written() -> None:
    (statement,) = split('ALTER TABLE app."Orders" DROP COLUMN "Total"')

    assert removals(statement) == (
        Removal(ObjectName(K.COLUMN, '"Total"', table='app."Orders"'), False, False),
    )


# --- creations ---------------------------------------------------------------------------

CREATIONS = [
    (
        "CREATE TABLE app.t (id int CONSTRAINT t_pk PRIMARY KEY, b int REFERENCES u,"
        " CONSTRAINT chk CHECK (b > 0), CHECK (id > 0))",
        [
            ("table", "app.t"),
            ("table column", "app.t.id"),
            ("table constraint", "t_pk on app.t"),
            ("index", "app.t_pk"),
            ("table column", "app.t.b"),
            ("table constraint", "chk on app.t"),
        ],
    ),
    ("CREATE TABLE p PARTITION OF parent FOR VALUES IN (1)", [("table", "public.p")]),
    ("CREATE TABLE t2 AS SELECT 1 AS x", [("table", "public.t2")]),
    ("SELECT 1 AS x INTO t3", [("table", "public.t3")]),
    ("CREATE MATERIALIZED VIEW mv AS SELECT 1", [("materialized view", "public.mv")]),
    ('CREATE UNIQUE INDEX "By Name" ON app.t (b)', [("index", 'app."By Name"')]),
    ("CREATE INDEX ON t (b)", []),
    ("CREATE OR REPLACE VIEW v AS SELECT 1", [("view", "public.v")]),
    ("CREATE SEQUENCE app.s", [("sequence", "app.s")]),
    (
        "CREATE FUNCTION f(a int, VARIADIC b text[]) RETURNS int LANGUAGE sql AS 'SELECT 1'",
        [("function", "public.f(integer,pg_catalog.text[])")],
    ),
    (
        "CREATE PROCEDURE p(a int, OUT b int) LANGUAGE sql AS 'SELECT 1'",
        [("procedure", "public.p(integer)")],
    ),
    ("CREATE TYPE app.pair AS (a int, b int)", [("type", "app.pair")]),
    ("CREATE TYPE r AS RANGE (subtype = int)", [("type", "public.r")]),
    ("CREATE SCHEMA app", [("schema", "app")]),
    ("CREATE SCHEMA AUTHORIZATION joe", [("schema", "joe")]),
    (
        "CREATE TRIGGER trg BEFORE UPDATE ON app.t FOR EACH ROW EXECUTE FUNCTION f()",
        [("trigger", "trg on app.t")],
    ),
    ("CREATE RULE r AS ON UPDATE TO t DO INSTEAD NOTHING", [("rule", "r on public.t")]),
    ("CREATE POLICY p ON t USING (true)", [("policy", "p on public.t")]),
    (
        "ALTER TABLE t ADD COLUMN c int CONSTRAINT c_positive CHECK (c > 0),"
        " ADD CONSTRAINT t_c_key UNIQUE (c), DROP COLUMN old",
        [
            ("table column", "public.t.c"),
            ("table constraint", "c_positive on public.t"),
            ("table constraint", "t_c_key on public.t"),
            ("index", "public.t_c_key"),
        ],
    ),
    ("CREATE EXTENSION IF NOT EXISTS pg_trgm", [("extension", "pg_trgm")]),
    (
        "CREATE FOREIGN TABLE ft (a int) SERVER s",
        [("foreign table", "public.ft"), ("foreign table column", "public.ft.a")],
    ),
    ("ALTER FOREIGN TABLE ft ADD COLUMN b int", [("foreign table column", "public.ft.b")]),
    ("INSERT INTO t VALUES (1)", []),
]


@pytest.mark.parametrize(("sql", "expected"), CREATIONS)
def test_what_a_statement_creates(sql: str, expected: list[tuple[str, str]]) -> None:
    assert created(sql) == expected


def test_a_creation_keeps_the_names_as_written() -> None:
    (statement,) = split(
        'CREATE TRIGGER "Touch" BEFORE UPDATE ON app."Orders" EXECUTE FUNCTION f()'
    )

    assert creations(statement) == (ObjectName(K.TRIGGER, '"Touch"', table='app."Orders"'),)


# --- against PostgreSQL ------------------------------------------------------------------

CREATED = """
CREATE SCHEMA app;
CREATE SCHEMA "Odd Schema";
CREATE TYPE mood AS ENUM ('ok', 'sad');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TYPE app.pair AS (a int, b int);
CREATE TYPE app.span AS RANGE (subtype = int);
CREATE TABLE accounts (
    id int CONSTRAINT accounts_pk PRIMARY KEY, name text CONSTRAINT name_unique UNIQUE
);
CREATE TABLE app.orders (
    id int, account_id int CONSTRAINT orders_account_fk REFERENCES accounts,
    "Total Amount" numeric, CONSTRAINT "Positive Total" CHECK ("Total Amount" > 0)
);
CREATE TABLE "Odd Schema"."Mixed Case" ("select" int, "Col X" text, name text);
CREATE UNIQUE INDEX "Orders By Account" ON app.orders (account_id);
CREATE INDEX ON accounts (name);
CREATE VIEW app.recent_orders AS SELECT id FROM app.orders;
CREATE MATERIALIZED VIEW order_totals AS
    SELECT account_id, count(*) AS n FROM app.orders GROUP BY 1;
CREATE SEQUENCE app.tickets;
CREATE TABLE archive AS SELECT * FROM accounts;
SELECT * INTO archive_2 FROM accounts;
CREATE FUNCTION app.score(m mood, weight int DEFAULT 1, VARIADIC tags text[] DEFAULT '{}')
    RETURNS integer LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE FUNCTION "Odd Schema"."Odd F"(varchar(5), timestamptz, double precision, "char", char,
    bool, int8, numeric(10, 2), jsonb, app.pair, positive, OUT x int) LANGUAGE sql AS 'SELECT 1';
CREATE PROCEDURE app.archive_all(IN days int, OUT moved bigint) LANGUAGE sql AS 'SELECT 1::bigint';
CREATE TRIGGER "Touch Accounts" BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION touch();
CREATE RULE orders_no_delete AS ON DELETE TO app.orders DO INSTEAD NOTHING;
CREATE POLICY own_orders ON app.orders USING (true);
ALTER TABLE accounts ADD COLUMN mood mood CONSTRAINT mood_known CHECK (mood IS NOT NULL),
    ADD CONSTRAINT accounts_name_excl EXCLUDE USING btree (name WITH =);
ALTER TABLE app.orders ADD CONSTRAINT orders_id_key UNIQUE (id);
CREATE EXTENSION IF NOT EXISTS plpgsql;
CREATE FOREIGN DATA WRAPPER nowhere;
CREATE SERVER far_away FOREIGN DATA WRAPPER nowhere;
CREATE FOREIGN TABLE app.remote (id int) SERVER far_away;
"""

CATALOG = """
SELECT i.type, i.identity FROM (
    SELECT 'pg_class'::regclass AS classid, oid AS objid, 0 AS objsubid FROM pg_class
    UNION ALL SELECT 'pg_class'::regclass, attrelid, attnum FROM pg_attribute
        WHERE attnum > 0 AND NOT attisdropped
    UNION ALL SELECT 'pg_constraint'::regclass, oid, 0 FROM pg_constraint
    UNION ALL SELECT 'pg_trigger'::regclass, oid, 0 FROM pg_trigger
    UNION ALL SELECT 'pg_rewrite'::regclass, oid, 0 FROM pg_rewrite
    UNION ALL SELECT 'pg_policy'::regclass, oid, 0 FROM pg_policy
    UNION ALL SELECT 'pg_proc'::regclass, oid, 0 FROM pg_proc
    UNION ALL SELECT 'pg_type'::regclass, oid, 0 FROM pg_type
    UNION ALL SELECT 'pg_namespace'::regclass, oid, 0 FROM pg_namespace
    UNION ALL SELECT 'pg_extension'::regclass, oid, 0 FROM pg_extension
) AS o, pg_identify_object(o.classid, o.objid, o.objsubid) AS i
WHERE i.schema IS NULL OR i.schema NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
"""


def catalog(conn: psycopg.Connection[TupleRow]) -> set[tuple[str, str]]:
    return {(str(kind), str(name)) for kind, name in conn.execute(CATALOG)}


def has(found: set[tuple[str, str]], obj: ObjectName) -> bool:
    """Whether ``obj``'s identity is in ``found``; one named without arguments, as a prefix."""
    kind, name = identity(obj)
    if obj.kind in (K.FUNCTION, K.PROCEDURE) and obj.arguments is None:
        return any(k == kind and n.startswith(f"{name}(") for k, n in found)
    return (kind, name) in found


@pytest.fixture(scope="module")
def objects_database(postgres_server: pg.Server, template_database: str) -> Iterator[str]:
    name = f"{template_database}_objects"
    with pg.scratch_database(
        postgres_server.url, name, template=template_database, setup=CREATED
    ) as url:
        yield url


@pytest.mark.db
def test_every_created_object_is_in_the_catalog_under_its_identity(objects_database: str) -> None:
    with psycopg.connect(objects_database) as conn:
        found = catalog(conn)
    names = [obj for statement in split(CREATED) for obj in creations(statement)]

    assert [identity(obj) for obj in names if not has(found, obj)] == []
    kinds = {obj.kind for obj in names}
    assert kinds == set(ObjectKind)


DROPS = [
    'DROP TABLE "Odd Schema"."Mixed Case"',
    "DROP TABLE IF EXISTS archive, archive_2",
    "DROP FUNCTION app.score(mood, int, text[])",
    "DROP FUNCTION touch CASCADE",
    'DROP FUNCTION "Odd Schema"."Odd F"(varchar, timestamptz, float8, "char", char, boolean,'
    " bigint, numeric, jsonb, app.pair, positive)",
    "DROP PROCEDURE app.archive_all(IN int, OUT bigint)",
    'DROP TRIGGER "Touch Accounts" ON accounts',
    "DROP RULE orders_no_delete ON app.orders",
    "DROP POLICY own_orders ON app.orders",
    'ALTER TABLE app.orders DROP COLUMN "Total Amount" CASCADE, DROP CONSTRAINT orders_account_fk',
    "ALTER TABLE accounts DROP CONSTRAINT accounts_name_excl, DROP COLUMN mood",
    'DROP INDEX app."Orders By Account"',
    "DROP VIEW app.recent_orders",
    "DROP MATERIALIZED VIEW order_totals",
    "DROP SEQUENCE app.tickets",
    "DROP DOMAIN positive CASCADE",
    "DROP TYPE app.span, mood CASCADE",
    'DROP SCHEMA "Odd Schema" CASCADE',
    "DROP EXTENSION plpgsql CASCADE",
    "DROP FOREIGN TABLE app.remote",
    "ALTER FOREIGN TABLE app.remote DROP COLUMN id",
]


@pytest.mark.db
@pytest.mark.parametrize("sql", DROPS)
def test_a_drop_removes_exactly_the_identities_it_names(objects_database: str, sql: str) -> None:
    (statement,) = split(sql)
    dropped = [removal.obj for removal in removals(statement)]
    with psycopg.connect(objects_database) as conn:
        before = catalog(conn)
        conn.execute(sql.encode())
        after = catalog(conn)
        conn.rollback()

    assert dropped
    assert [identity(obj) for obj in dropped if not has(before, obj)] == []
    assert [identity(obj) for obj in dropped if has(after, obj)] == []
