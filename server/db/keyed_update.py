"""An UPDATE of rows by their key whose batch is one statement on PostgreSQL, not one per row.

A batch of heartbeats writes each device's last-seen time (`server.group_commit.defer`), and an
`executemany` of the one-row UPDATE went to PostgreSQL as psycopg sends one: a Bind and an Execute
per row in pipeline mode, each row's parameters dumped and each row's result read back in Python.
Profiled under heartbeats at 128 connections, that pipeline was a sixth of the server's GIL time.
Here the batch's rows go as arrays, one per column, in one `UPDATE … FROM unnest(…)`.

What the separate UPDATEs did, it keeps:

- the rows are locked in key order, the batch's one lock order (`server.group_commit`): the
  statement first locks its rows through `SELECT … ORDER BY key COLLATE "C" FOR NO KEY UPDATE`
  (the "C" collation orders as Python orders the batch), and the update only touches rows that
  lock has produced, so no row is taken out of order whatever join the planner picks;
- a key named twice ends with its last row's values, as the second UPDATE of the two left it;
- a key with no row changes nothing.

SQLite keeps the `executemany`: its driver loops in C, with no round trips, and its one writer
holds the whole database, so there is no order to keep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, String, Table, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from server.db.among import text_array, text_array_parameter
from server.db.driver_statements import DriverStatement


class KeyedUpdate:
    """`UPDATE table SET column = :parameter, … WHERE key = :key`, for one row or for a batch.

    `values` maps each column to the parameter that gives it; a row is a dict of the parameters."""

    def __init__(self, table: Table, key: str, values: Mapping[str, str], key_parameter: str | None = None):
        self.table = table
        self.key = key
        self.key_parameter = key_parameter or key
        self.values = dict(values)
        self.one = DriverStatement(
            update(table)
            .where(table.c[key] == bindparam(self.key_parameter))
            .values({column: bindparam(parameter) for column, parameter in self.values.items()})
        )

    def execute(self, connection: Connection, row: Mapping[str, Any]) -> None:
        self.one.execute(connection, row)

    def execute_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if len(rows) < 2 or connection.dialect.name != "postgresql":
            self.one.execute_many(connection, rows)
            return
        last = {row[self.key_parameter]: row for row in rows}  # a key twice: its last row
        keys = sorted(last)
        arrays: dict[str, Any] = {"keys": self._array("keys", keys)}
        for parameter in self.values.values():
            arrays[parameter] = self._array(parameter, [last[key][parameter] for key in keys])
        self._batch.execute(connection, arrays)

    def _array(self, parameter: str, values: list[Any]) -> Any:
        """Strings as an array's text (`among.text_array`: psycopg dumps a list in Python), else the list."""
        return text_array(values) if parameter in self._as_text else values

    @cached_property
    def _as_text(self) -> frozenset[str]:
        """The parameters whose column holds strings, sent as an array's text."""
        columns = {"keys": self.key, **{parameter: column for column, parameter in self.values.items()}}
        return frozenset(
            name for name, column in columns.items() if isinstance(self.table.c[column].type, String)
        )

    def _array_parameter(self, parameter: str, column: str) -> Any:
        if parameter in self._as_text:
            return text_array_parameter(parameter)
        return bindparam(parameter, type_=ARRAY(self.table.c[column].type))

    @cached_property
    def _batch(self) -> DriverStatement:
        table, key = self.table, self.table.c[self.key]
        keys = self._array_parameter("keys", self.key)
        locked = (
            select(key.label("key"))
            .where(key == any_(keys))
            .order_by(key.collate("C"))
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE: the lock the UPDATE itself takes
            .cte("locked")
            .prefix_with("MATERIALIZED")
        )
        parameters = list(self.values.values())
        given = (
            func.unnest(
                keys,
                *(self._array_parameter(name, column) for column, name in self.values.items()),
            )
            .table_valued("key", *parameters)
            .render_derived(name="given")
        )
        return DriverStatement(
            update(table)
            .where(key == locked.c.key, given.c.key == locked.c.key)
            .values({column: given.c[parameter] for column, parameter in self.values.items()})
        )
