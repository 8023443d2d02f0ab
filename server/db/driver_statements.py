"""The hot path's statements sent straight to the database driver, each compiled once per database.

`Connection.execute` spends 50-110 µs of Python on every statement beyond the driver's own work
(measured on the build machine: an INSERT of a report row 100-125 µs against 37 µs through sqlite3;
an `UPDATE … RETURNING` 100-110 µs against 16 µs): it builds the statement's cache key and looks it
up, makes an execution context, runs the parameters through the compiled object, and wraps the
cursor in a Result. A report runs four or five statements, so on SQLite that was a quarter of a
report's server time, on a process whose one core (the GIL) is what limits throughput.

A `DriverStatement` does that work once per database: the SQL text, the order of its parameters and
each parameter's type processor are taken from SQLAlchemy's own compilation of the statement, so the
bytes stored are what `connection.execute` would store (`tests/server/test_driver_statements.py`
runs each hot statement both ways and compares the rows). What stays as it was:

- it runs on the connection's own transaction (begun first if it is not: on SQLite the engine's
  `BEGIN IMMEDIATE`), never in one of its own;
- a driver error is raised as SQLAlchemy raises it, through the connection's own handling: a locked
  database is still `OperationalError` (answered 503), and a connection cut by a database restart
  still invalidates the pool;
- `before_cursor_execute` listeners see every statement (the benchmark's statement counts).

Only plain statements qualify: no expanding `IN` lists and nothing SQLAlchemy renders at execution
time (refused when the statement is first compiled for a database).
"""

from __future__ import annotations

import threading
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.schema import ScalarElementColumnDefault

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # (the driver's name of the parameter, the statement's name, its processor), in the order a
    # positional driver takes them.
    parameters: tuple[tuple[str, str, Processor], ...]
    positional: bool
    # Values written into the statement itself (`values(status="lost")`), by the statement's name.
    fixed: Mapping[str, Any]
    required: frozenset[str]
    # The rows' names and types, if the statement returns rows.
    columns: tuple[tuple[str, Any], ...]


class DriverStatement:
    """One Core statement, compiled once for each database it runs on, run on the driver's cursor."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}
        # The rows' class and result processors, by database and the cursor's column types.
        self._results: dict[tuple[str, tuple[Any, ...]], tuple[type, tuple[Processor, ...]]] = {}
        self._lock = threading.Lock()

    def first(self, connection: Connection, parameters: Mapping[str, Any]) -> Any:
        """The first row (a named tuple: `row.column`), or None."""
        rows = self._run(connection, parameters, fetch=1)
        return rows[0] if rows else None

    def all(self, connection: Connection, parameters: Mapping[str, Any]) -> list[Any]:
        return self._run(connection, parameters, fetch=None)

    def execute(self, connection: Connection, parameters: Mapping[str, Any]) -> None:
        self._run(connection, parameters, fetch=0)

    def execute_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """One `executemany`: one statement sent, as `connection.execute(statement, rows)` sends it."""
        if not rows:
            return
        if len(rows) == 1:  # as SQLAlchemy sends a list of one row
            self.execute(connection, rows[0])
            return
        compiled = self._compiled_for(connection.dialect)
        values = [self._values(compiled, row) for row in rows]
        self._send(connection, compiled, values, many=True, fetch=0)

    def _run(self, connection: Connection, parameters: Mapping[str, Any], fetch: int | None) -> list[Any]:
        compiled = self._compiled_for(connection.dialect)
        return self._send(connection, compiled, self._values(compiled, parameters), many=False, fetch=fetch)

    def _send(
        self, connection: Connection, compiled: _Compiled, values: Any, many: bool, fetch: int | None
    ) -> list[Any]:
        if not connection.in_transaction():
            connection.begin()  # as `execute` would begin it (SQLite: the engine's BEGIN IMMEDIATE)
        cursor = connection.connection.cursor()
        try:
            if connection._has_events or connection.engine._has_events:
                connection.dispatch.before_cursor_execute(
                    connection, cursor, compiled.sql, values, None, many
                )
            if many:
                cursor.executemany(compiled.sql, values)
                return []
            cursor.execute(compiled.sql, values)
            if fetch == 0 or not compiled.columns:
                return []
            raw = cursor.fetchmany(fetch) if fetch else cursor.fetchall()
            return self._rows(connection.dialect, cursor.description, raw)
        except connection.dialect.loaded_dbapi.Error as error:
            # SQLAlchemy's own wrapping, disconnect handling (the pool invalidated) included; it raises.
            connection._handle_dbapi_exception(error, compiled.sql, values, cursor, None)
            raise  # pragma: no cover - the line above always raises
        finally:
            cursor.close()

    @staticmethod
    def _values(compiled: _Compiled, parameters: Mapping[str, Any]) -> Any:
        missing = compiled.required.difference(parameters)
        if missing:
            raise KeyError(f"no value for parameter(s) {', '.join(sorted(missing))}")
        values = []
        for _driver_name, name, process in compiled.parameters:
            value = parameters[name] if name in parameters else compiled.fixed.get(name)
            values.append(process(value) if process is not None else value)
        if compiled.positional:
            return tuple(values)
        return {
            driver_name: value for (driver_name, _, _), value in zip(compiled.parameters, values, strict=True)
        }

    def _compiled_for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            with self._lock:
                found = self._compiled.setdefault(dialect.name, _compile(self.statement, dialect))
        return found

    def _rows(self, dialect: Dialect, description: Any, raw: Sequence[Any]) -> list[Any]:
        types = tuple(column[1] for column in description)
        key = (dialect.name, types)
        known = self._results.get(key)
        if known is None:
            compiled = self._compiled[dialect.name]
            names = [name for name, _ in compiled.columns]
            made: Any = namedtuple("Row", names)  # type: ignore[misc]  # names known only here
            processors = tuple(
                type_.dialect_impl(dialect).result_processor(dialect, code)
                for (_, type_), code in zip(compiled.columns, types, strict=True)
            )
            known = self._results.setdefault(key, (made, processors))
        row_type: Any = known[0]
        processors = known[1]
        if not any(processors):
            return [row_type._make(row) for row in raw]
        return [
            row_type._make(
                process(value) if process is not None else value
                for process, value in zip(processors, row, strict=True)
            )
            for row in raw
        ]


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]  # every statement has it
    if not isinstance(compiled, SQLCompiler):  # pragma: no cover - DDL is not a hot statement
        raise TypeError(f"not a statement the driver can run: {statement}")
    binds = compiled.binds
    if any(bind.expanding or bind.literal_execute for bind in binds.values()) or "__[POSTCOMPILE" in (
        compiled.string
    ):
        raise ValueError("a statement rendered at execution time (an expanding IN?) cannot be sent as is")
    order = list(compiled.positiontup or ()) if compiled.positional else list(binds)
    escaped: Mapping[str, str] = compiled.escaped_bind_names or {}
    parameters = []
    for name in order:
        bind = binds[name]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        parameters.append((escaped.get(name, name), name, process))
    fixed = {name: bind.effective_value for name, bind in binds.items() if not bind.required or bind.callable}
    # Python-side column defaults (`default=False`), which SQLAlchemy fills in as it executes.
    for column in [*compiled.insert_prefetch, *compiled.update_prefetch]:
        default = column.default if column in compiled.insert_prefetch else column.onupdate
        if not isinstance(default, ScalarElementColumnDefault):
            raise ValueError(f"{column}: only a fixed default can be filled in without SQLAlchemy")
        fixed[column.key] = default.arg
    required = frozenset(name for name, bind in binds.items() if bind.required and name not in fixed)
    columns = tuple((entry.keyname, entry.type) for entry in compiled._result_columns)
    if any(not name.isidentifier() for name, _ in columns):
        raise ValueError(f"result columns must be names: {[name for name, _ in columns]}")
    return _Compiled(compiled.string, tuple(parameters), compiled.positional, fixed, required, columns)
