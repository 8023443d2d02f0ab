"""Small Core statements the hot paths share, written once for both SQLite and PostgreSQL.

Statements are built once with bind parameters and reused: building and
cache-keying a fresh statement costs more than executing it, and these run on
every request.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Executable, Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite

from server.db.driver_statements import DriverStatement


@lru_cache(maxsize=64)
def _insert_if_new_statement(dialect: str, table: Table, columns: tuple[str, ...]) -> DriverStatement:
    module: Any
    if dialect == "postgresql":
        module = postgresql
    elif dialect == "sqlite":
        module = sqlite
    else:  # pragma: no cover - make_engine only builds the two
        raise ValueError(f"unsupported database {dialect}")
    key = next(iter(table.primary_key.columns))
    # RETURNING rather than rowcount: psycopg reports no rowcount for ON CONFLICT DO NOTHING.
    statement: Executable = (
        module.insert(table)
        .values({name: bindparam(name) for name in columns})
        .on_conflict_do_nothing()
        .returning(key)
    )
    return DriverStatement(statement)


def insert_if_new(connection: Connection, table: Table, values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING RETURNING; True when the row was new.

    One statement instead of a savepoint and a caught IntegrityError: the
    request-id and report-id checks run on every request, so this is the cost
    of idempotency and replay protection.
    """
    statement = _insert_if_new_statement(connection.dialect.name, table, tuple(sorted(values)))
    return statement.first(connection, values) is not None
