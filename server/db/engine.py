"""Making an engine for SQLite or PostgreSQL, and running the migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from server.db.checkpointer import checkpointed_here, sqlite_file
from server.db.statement_counts import count_statements
from server.errors import DatabaseError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


# How long the server waits for a lock another process holds before it answers 503 + Retry-After:
# a few seconds, so a stuck writer costs agents a retry rather than holding every request.
SERVER_LOCK_TIMEOUT_SECONDS = 3.0
# Commands (migrations, reports for IT) may wait longer: nobody is queueing behind them.
COMMAND_LOCK_TIMEOUT_SECONDS = 10.0
# The longest one PostgreSQL statement of the server may run (the hot paths take milliseconds).
SERVER_STATEMENT_TIMEOUT_SECONDS = 10.0


def _sqlite_pragmas(lock_timeout: float, database: str | None) -> Any:
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        _sqlite_setup(dbapi_connection, record, lock_timeout)
        if database is not None and checkpointed_here(database):
            # This process's checkpointer copies the log back; a commit need not (checkpointer.py).
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

    return on_connect


def _sqlite_setup(dbapi_connection: Any, _record: Any, lock_timeout: float) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin
    # (see `_sqlite_begin`): savepoints then work as documented.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while a report is written. FULL (SQLite's default) syncs the log at
    # every commit: a 2xx is then kept through a power cut too, as PostgreSQL's fsync keeps it.
    # NORMAL kept it only through a crash of the server itself; a batch's one commit makes the
    # sync one per batch, not one per request.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    """Take the write lock at the start: almost every server transaction writes, and a
    deferred transaction that later needs to write can fail with SQLITE_BUSY at once
    instead of waiting its turn. A read-only connection (`homeroom_read_only`) begins
    deferred, so looking up a device's key never waits for a writer."""
    if connection.get_execution_options().get("homeroom_read_only"):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


# The database threads' own pool on PostgreSQL (`hot_path`): each of a worker's two threads holds
# one connection at a time (its batch's device reads, then its transaction); the rest is headroom.
HOT_PATH_CONNECTIONS = 4


def make_engine(url: str, for_server: bool = False, hot_path: bool = False) -> Engine:
    """`for_server`: lock waits of a few seconds (then 503), and a statement time limit on PostgreSQL;
    otherwise the longer waits suited to a command run by IT.

    `hot_path` (PostgreSQL only): the engine of the database threads (`server.group_commit`), apart
    from the console's. Its connections run prepared statements on their generic plans
    (`plan_cache_mode`): psycopg prepares a statement the fifth time a connection sends it, and
    PostgreSQL went on planning the report's statements afresh on every execution, judging the
    generic plan dearer; planning was about a third of the database's CPU per report. The hot
    statements find their rows by key, where the generic plan is the custom one; the console's
    queries, whose best plan can depend on their values, keep PostgreSQL's choice. Set per
    transaction instead (`SET LOCAL`), it cost a round trip a batch, which small batches felt."""
    lock_timeout = SERVER_LOCK_TIMEOUT_SECONDS if for_server else COMMAND_LOCK_TIMEOUT_SECONDS
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and hot_path:
        raise DatabaseError("SQLite's one connection per process is shared by all: no hot-path engine")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # One connection per process: SQLite has one writer at a time anyway, and threads queueing
        # for the pool wake as soon as it is free, where SQLite's busy handler would sleep and poll.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": lock_timeout},
            pool_size=1,
            max_overflow=0,
            # Waiting for this process's one connection is waiting for the lock, too.
            pool_timeout=lock_timeout + 2,
        )
        served_file = sqlite_file(url) if for_server else None
        event.listen(engine, "connect", _sqlite_pragmas(lock_timeout, served_file))
        event.listen(engine, "begin", _sqlite_begin)
        if for_server:
            count_statements(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
        # No JIT: the console's sign-off counts carry per-row lookups the planner prices high, and
        # compiling them took seconds longer than running them (a count of 128,000 people: 2.5 s
        # of JIT for 0.3 s of work). Nothing Homeroom runs is the long analytic query JIT pays for.
        options = f"-c lock_timeout={int(lock_timeout * 1000)} -c jit=off"
        if for_server:
            options += f" -c statement_timeout={int(SERVER_STATEMENT_TIMEOUT_SECONDS * 1000)}"
        if hot_path:
            options += " -c plan_cache_mode=force_generic_plan"
        connections = HOT_PATH_CONNECTIONS if hot_path else 20
        engine = create_engine(
            url,
            pool_size=connections,
            max_overflow=connections,
            # No ping before each use: it is a round trip per request. A connection broken by a
            # database restart fails once, is answered 503 + Retry-After, and the agent resends.
            pool_pre_ping=False,
            pool_timeout=lock_timeout + 2,
            connect_args={"options": options},
        )
        if for_server:
            count_statements(engine)
        return engine
    raise DatabaseError(
        f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql://"
    )


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    command.upgrade(alembic_config(engine), "head")


def is_current(engine: Engine) -> bool:
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head
