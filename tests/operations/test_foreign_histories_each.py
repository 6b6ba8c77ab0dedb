"""backout on each other tool's history table, end to end: a folder in the tool's own file
format, the schema and the tool's table exactly as the tool's ``up`` leaves them, then
``status`` reads the table, a rollback writes it as the tool's own ``down`` does, and ``apply``
stays the tool's job. (goose, and golang-migrate's dirty state: test_foreign_histories.py.)"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backout.config import Settings, load_settings
from backout.database.connection import Target
from backout.errors import ExitCode, RefusedError
from backout.operations import emergency as procedure
from backout.operations.apply import apply
from backout.operations.rollback import rollback
from backout.operations.status import status
from tests.database.histories.test_flyway import FLYWAY_DDL, FLYWAY_INSERT
from tests.database.histories.test_liquibase import CHANGELOG_DDL, LOCK_DDL, UPDATE_INSERT
from tests.database.histories.tool_tables import DIESEL, GOLANG_MIGRATE, SQLX, make
from tests.operations.paired_formats import on_the_command_line
from tests.runner import run
from tests.sample_project import FAST, ME, rows

Conn = psycopg.Connection[Any]
CREATE_USERS = "CREATE TABLE users (id int PRIMARY KEY);\n"
DROP_USERS = "DROP TABLE users;\n"
ADD_EMAIL = "ALTER TABLE users ADD COLUMN email text;\n"
DROP_EMAIL = "ALTER TABLE users DROP COLUMN email;\n"
EMAIL_COLUMNS = "SELECT count(*) FROM pg_attribute WHERE attname = 'email' AND attnum > 0"
TABLES = (
    "SELECT relname FROM pg_class WHERE relkind = 'r'"
    " AND relnamespace = 'public'::regnamespace AND relname NOT LIKE 'backout\\_%'"
)


@dataclass(frozen=True)
class Tool:
    """One tool: its files, what its ``up`` of both leaves in its table, and what is in that
    table (``contents``) before and after its own ``down`` of the second."""

    name: str
    table: str
    files: dict[str, str]
    up: Callable[[Conn], None]
    second: str
    """The second migration as ``rollback`` takes it (its version or name)."""
    contents: str
    applied: list[tuple[Any, ...]]
    after_down: list[tuple[Any, ...]]
    others: tuple[str, ...] = ()
    """The tool's other tables."""


def golang_migrate_up(conn: Conn) -> None:
    """``migrate up``: the one row of the newest version, clean."""
    make(conn, GOLANG_MIGRATE, "schema_migrations")
    conn.execute("INSERT INTO schema_migrations (version, dirty) VALUES (2, false)")


SQLX_FILES = {
    "20240101120000_create_users.up.sql": CREATE_USERS,
    "20240101120000_create_users.down.sql": DROP_USERS,
    "20240102120000_add_email.up.sql": ADD_EMAIL,
    "20240102120000_add_email.down.sql": DROP_EMAIL,
}


def sqlx_up(conn: Conn) -> None:
    """``sqlx migrate run``: a row per migration with its description and SHA-384 checksum,
    then its elapsed nanoseconds."""
    make(conn, SQLX, "_sqlx_migrations")
    for version, description, up in (
        (20240101120000, "create users", CREATE_USERS),
        (20240102120000, "add email", ADD_EMAIL),
    ):
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum,"
            " execution_time) VALUES (%s, %s, TRUE, %s, -1)",
            (version, description, hashlib.sha384(up.encode()).digest()),
        )
        conn.execute(
            "UPDATE _sqlx_migrations SET execution_time = 4200000 WHERE version = %s", (version,)
        )


def diesel_up(conn: Conn) -> None:
    """``diesel migration run``: a row per directory, its version without dashes."""
    make(conn, DIESEL, "__diesel_schema_migrations")
    for version in ("20240115093000", "20240201120000"):
        conn.execute("INSERT INTO __diesel_schema_migrations (version) VALUES (%s)", (version,))


def flyway_checksum(text: str) -> int:
    """Flyway's ``ChecksumCalculator``: CRC-32 of the lines without their breaks, signed."""
    crc = zlib.crc32("".join(text.splitlines()).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def flyway_up(conn: Conn) -> None:
    """``flyway migrate`` on the existing ``public`` schema (so no ``SCHEMA`` row)."""
    conn.execute(FLYWAY_DDL.format(table='"public"."flyway_schema_history"'))
    for rank, description, script, text in (
        (1, "create users", "V1__create_users.sql", CREATE_USERS),
        (2, "add email", "V2__add_email.sql", ADD_EMAIL),
    ):
        conn.execute(
            FLYWAY_INSERT,
            (rank, str(rank), description, "SQL", script, flyway_checksum(text), "flyway", 7, True),
        )


CHANGELOG = f"""--liquibase formatted sql

--changeset alice:create-users
{CREATE_USERS}--rollback {DROP_USERS}
--changeset bob:add-email
{ADD_EMAIL}--rollback {DROP_EMAIL}"""


def liquibase_up(conn: Conn) -> None:
    """``liquibase update --changelog-file=db/001-users.sql``: its lock table, a row per
    changeset."""
    conn.execute(CHANGELOG_DDL.format(table="public.databasechangelog"))
    conn.execute(LOCK_DDL)
    for order, (id_, author) in enumerate((("create-users", "alice"), ("add-email", "bob")), 1):
        conn.execute(UPDATE_INSERT, (id_, author, "db/001-users.sql", order, "9:0123", "EXECUTED"))


TOOLS = [
    Tool(
        "golang-migrate",
        "schema_migrations",
        {
            "1_create_users.up.sql": CREATE_USERS,
            "1_create_users.down.sql": DROP_USERS,
            "2_add_email.up.sql": ADD_EMAIL,
            "2_add_email.down.sql": DROP_EMAIL,
        },
        golang_migrate_up,
        "2",
        "SELECT version, dirty FROM schema_migrations",
        [(2, False)],
        [(1, False)],
    ),
    Tool(
        "sqlx",
        "_sqlx_migrations",
        SQLX_FILES,
        sqlx_up,
        "20240102120000",
        "SELECT version, description, success FROM _sqlx_migrations ORDER BY version",
        [(20240101120000, "create users", True), (20240102120000, "add email", True)],
        [(20240101120000, "create users", True)],
    ),
    Tool(
        "diesel",
        "__diesel_schema_migrations",
        {
            "2024-01-15-093000_create_users/up.sql": CREATE_USERS,
            "2024-01-15-093000_create_users/down.sql": DROP_USERS,
            "2024-02-01-120000_add_email/up.sql": ADD_EMAIL,
            "2024-02-01-120000_add_email/down.sql": DROP_EMAIL,
        },
        diesel_up,
        "20240201120000",
        "SELECT version FROM __diesel_schema_migrations ORDER BY version",
        [("20240115093000",), ("20240201120000",)],
        [("20240115093000",)],
    ),
    Tool(
        "flyway",
        "flyway_schema_history",
        {
            "V1__create_users.sql": CREATE_USERS,
            "U1__create_users.sql": DROP_USERS,
            "V2__add_email.sql": ADD_EMAIL,
            "U2__add_email.sql": DROP_EMAIL,
        },
        flyway_up,
        "2",
        "SELECT installed_rank, version, description, type, script, checksum, success"
        " FROM flyway_schema_history ORDER BY installed_rank",
        [
            (
                1,
                "1",
                "create users",
                "SQL",
                "V1__create_users.sql",
                flyway_checksum(CREATE_USERS),
                True,
            ),
            (2, "2", "add email", "SQL", "V2__add_email.sql", flyway_checksum(ADD_EMAIL), True),
        ],
        [
            (
                1,
                "1",
                "create users",
                "SQL",
                "V1__create_users.sql",
                flyway_checksum(CREATE_USERS),
                True,
            ),
            (2, "2", "add email", "SQL", "V2__add_email.sql", flyway_checksum(ADD_EMAIL), True),
            (
                3,
                "2",
                "add email",
                "UNDO_SQL",
                "U2__add_email.sql",
                flyway_checksum(DROP_EMAIL),
                True,
            ),
        ],
    ),
    Tool(
        "liquibase",
        "databasechangelog",
        {"001-users.sql": CHANGELOG},
        liquibase_up,
        "add-email",
        "SELECT id, author, filename, orderexecuted, exectype FROM databasechangelog"
        " ORDER BY orderexecuted",
        [
            ("create-users", "alice", "db/001-users.sql", 1, "EXECUTED"),
            ("add-email", "bob", "db/001-users.sql", 2, "EXECUTED"),
        ],
        [("create-users", "alice", "db/001-users.sql", 1, "EXECUTED")],
        others=("databasechangeloglock",),
    ),
]


def _project(root: Path, files: dict[str, str]) -> Settings:
    """A project whose ``db`` folder holds ``files``; no history configured."""
    for name, text in files.items():
        (root / "db" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "db" / name).write_text(text)
    (root / "backout.toml").write_text('migrations = ["db"]\n')
    return load_settings(root, environ={})


@pytest.fixture(params=TOOLS, ids=[t.name for t in TOOLS])
def tool(request: pytest.FixtureRequest) -> Tool:
    chosen: Tool = request.param
    return chosen


@pytest.fixture
def settings(tool: Tool, tmp_path: Path, conn: Conn) -> Settings:
    """The tool's folder, with both migrations applied by the tool itself."""
    settings = _project(tmp_path, tool.files)
    conn.execute(CREATE_USERS + ADD_EMAIL)
    tool.up(conn)
    return settings


def _states(settings: Settings, target: Target) -> list[tuple[str, str, str]]:
    return [(s.state.value, s.history_tool, s.history_table) for s in status(settings, target)]


def test_status_reads_what_the_tool_applied(
    tool: Tool, settings: Settings, target: Target, conn: Conn
) -> None:
    assert _states(settings, target) == [("applied", tool.name, tool.table)] * 2
    assert rows(conn, tool.contents) == tool.applied  # read, never written


def test_a_rollback_leaves_the_tools_table_as_its_own_down_does(
    tool: Tool, settings: Settings, target: Target, conn: Conn
) -> None:
    rollback(settings, target, ME, tool.second, options=FAST)

    assert rows(conn, EMAIL_COLUMNS) == [(0,)]
    assert rows(conn, tool.contents) == tool.after_down
    assert rows(conn, "SELECT history_table, outcome FROM backout_audit_event") == [
        (tool.table, "success")
    ]
    tables = {name for (name,) in rows(conn, TABLES)}
    assert tables == {"users", tool.table, *tool.others}  # no history table of backout's
    assert [s.state.value for s in status(settings, target)] == ["applied", "rolled_back"]


def test_an_emergency_leaves_the_tools_table_as_its_own_down_does(
    tool: Tool, settings: Settings, target: Target, conn: Conn
) -> None:
    request = procedure.Request(reference=tool.second, reason="emails broke", no_git=True)

    result = procedure.emergency(settings, target, ME, request)

    assert result.postmortem is not None
    assert rows(conn, EMAIL_COLUMNS) == [(0,)]
    assert rows(conn, tool.contents) == tool.after_down
    states = [(s.state.value, s.history_tool) for s in status(settings, target)]
    assert states == [  # the fix-forward stub, in the tool's format, is pending
        ("applied", tool.name),
        ("rolled_back", tool.name),
        ("pending", tool.name),
    ]


def test_apply_after_the_rollback_stays_the_tools_job(
    tool: Tool, settings: Settings, target: Target, conn: Conn
) -> None:
    rollback(settings, target, ME, tool.second, options=FAST)

    with pytest.raises(RefusedError) as refused:
        apply(settings, target, ME, options=FAST, reapply=[tool.second])

    assert refused.value.exit_code == ExitCode.REFUSED
    assert f"db's migrations are applied by {tool.name} (its {tool.table} table" in (
        refused.value.message
    )
    assert rows(conn, tool.contents) == tool.after_down
    assert rows(conn, EMAIL_COLUMNS) == [(0,)]


def test_backout_status_names_the_tools_table(
    tmp_path: Path, database_url: str, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlx = next(t for t in TOOLS if t.name == "sqlx")
    _project(tmp_path, sqlx.files)
    conn.execute(CREATE_USERS + ADD_EMAIL)
    sqlx.up(conn)
    on_the_command_line(tmp_path, database_url, monkeypatch)

    shown = run("status")
    as_json = run("status", "--json")

    assert shown.exit_code == 0, shown.stderr
    assert "(history: sqlx's _sqlx_migrations)" in shown.stdout
    assert as_json.exit_code == 0, as_json.stderr
    listed = json.loads(as_json.stdout)
    assert [m["history_tool"] for m in listed["migrations"]] == ["sqlx", "sqlx"]
