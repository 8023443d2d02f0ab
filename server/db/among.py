"""`column IN (values)` for a list of a thousand ids, written the way each database reads it fastest.

On PostgreSQL the list goes as one array parameter (`= ANY(:ids)`): with a thousand separate
parameters psycopg spends longer splitting the statement's text than the database spends running it
(25 ms a batch of the console's CSV exports). SQLite takes the plain IN list.

`among_parameter` is the same test with the list bound as one parameter, in SQL whose text does
not change with the list's length, for the statements the hot path compiles once
(`server.db.driver_statements`): an expanding IN list is new SQL for every length, rendered again
by SQLAlchemy on every call and parsed and planned again by PostgreSQL.

On the hot path a PostgreSQL list of strings goes as the text of an array (`text_array`), cast in
the SQL (`text_array_parameter`): psycopg dumps a Python list element by element in Python, which
was 5-6 % of the server's GIL time under heartbeats (three lists a batch); the text is one join.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, String, and_, any_, bindparam, cast, false, func, select
from sqlalchemy.dialects.postgresql import ARRAY


def among(column: ColumnElement[Any], values: Sequence[str], dialect: str) -> ColumnElement[bool]:
    """Also bounded by the least and the greatest value, which changes nothing that matches: an
    export's batch is a run of consecutive ids, and with the bounds the database reads that run of
    the index rather than the whole table (which it judged cheaper than a thousand lookups)."""
    if not values:
        return false()
    bounded = and_(column >= min(values), column <= max(values))
    if dialect == "postgresql":
        return and_(bounded, column == any_(bindparam(None, list(values), type_=ARRAY(String))))
    return and_(bounded, column.in_(list(values)))


def text_array(values: Sequence[str | None]) -> str:
    """PostgreSQL's text form of an array of strings (`{"a","b",NULL}`), for `text_array_parameter`.
    Every element is quoted, with backslash and double quote escaped, so any string reads back as it
    was (commas, braces, spaces, the word NULL); None is SQL NULL."""
    return (
        "{"
        + ",".join(
            "NULL" if value is None else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            for value in values
        )
        + "}"
    )


def text_array_parameter(name: str) -> ColumnElement[Any]:
    """A PostgreSQL array of strings bound as its text (`text_array`) and cast in the SQL. To
    `VARCHAR[]` with no length: an explicit cast to `VARCHAR(n)` would cut a long string short without
    a word, where writing it to a column of that length refuses it."""
    parameter: BindParameter[str] = bindparam(name, type_=String)
    return cast(parameter, ARRAY(String()))


def among_parameter(column: ColumnElement[Any], name: str, dialect: str) -> ColumnElement[bool]:
    """`column` among the strings of the parameter `name`, given as `parameter_list` makes it: on
    PostgreSQL an array (`= ANY`, bound as its text), on SQLite a JSON array read by `json_each`."""
    if dialect == "postgresql":
        return column == any_(text_array_parameter(name))
    return column.in_(select(func.json_each(bindparam(name)).table_valued("value").c.value))


def parameter_list(values: Sequence[str], dialect: str) -> Any:
    """The value of an `among_parameter` parameter."""
    return text_array(values) if dialect == "postgresql" else json.dumps(list(values))
