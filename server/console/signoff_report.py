"""The sign-off report read for the console and the admin API: coverage per school and audience
counted by the database, one page of people with the total, and the whole report in batches for a
streamed CSV. Every read is of `server.fleet.signoff_state.judged()`, narrowed by a clause the
caller builds from the reader's scope and filters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, literal, select, true, tuple_

from server.console.signoff_views import Coverage
from server.db.among import among
from server.db.tables import DEVICES
from server.fleet import signoff_state
from server.fleet.signoff_state import Judgement, judged
from server.fleet.signoffs import SignOffRow, report_order, row_of

EXPORT_DEVICES = 1000  # laptops per batch of the export: each batch on a connection of its own


def people_of(judgement: Judgement, in_order: bool = False) -> Any:
    """The judged people as a subquery the filters' clauses are written against: `in_order` for a
    page or an export, else for counting (`signoff_state.judged`)."""
    return judged(judgement, in_order).subquery("listed" if in_order else "people")


def coverage(connection: Connection, people: Any, where: ColumnElement[bool]) -> list[Coverage]:
    """One line per (school, audience) that has people, sorted."""
    state = people.c.standing
    query = (
        select(
            people.c.group_name,
            people.c.audience,
            func.count().label("people"),
            func.count().filter(state == signoff_state.SIGNED).label("signed"),
            func.count().filter(state == signoff_state.DECLINED).label("declined"),
        )
        .where(where)
        .group_by(people.c.group_name, people.c.audience)
        .order_by(people.c.group_name, people.c.audience)
    )
    return [
        Coverage(
            school=line.group_name,
            audience=line.audience,
            people=line.people,
            signed=line.signed,
            declined=line.declined,
            must_sign=line.people - line.signed - line.declined,
        )
        for line in connection.execute(query)
    ]


def count(connection: Connection, people: Any, where: ColumnElement[bool]) -> int:
    return int(connection.execute(select(func.count()).select_from(people).where(where)).scalar_one())


def page(
    connection: Connection,
    judgement: Judgement,
    people: Any,
    where: ColumnElement[bool],
    number: int,
    size: int,
) -> list[SignOffRow]:
    """Page `number` (from 0) of `size` people, in the report's order."""
    query = select(people).where(where).order_by(*report_order(people)).limit(size).offset(number * size)
    return [row_of(found, judgement) for found in connection.execute(query)]


def batches(
    connect: Callable[[], Connection],
    judgement: Judgement,
    people: Any,
    where: ColumnElement[bool],
    devices_where: list[ColumnElement[bool]],
    laptops_per_batch: int = EXPORT_DEVICES,
    streamed: bool = False,
) -> Iterator[list[SignOffRow]]:
    """The whole report in the report's order, `laptops_per_batch` laptops at a time, each batch read
    on a connection of its own (a long export must not hold SQLite's one connection while reports
    wait). The laptops are walked by (school, hostname, id), `ix_devices_group_hostname_id`;
    `devices_where` (on `devices`) narrows them as `where` narrows the people, so a batch is small."""
    if streamed:
        yield from _streamed(connect, judgement, people, where, laptops_per_batch)
        return
    key = (DEVICES.c.group_name, DEVICES.c.hostname, DEVICES.c.id)
    last: tuple[str, str, str] | None = None
    while True:
        with connect() as connection:
            after = tuple_(*key) > tuple_(*map(literal, last)) if last is not None else true()
            laptops = connection.execute(
                select(*key).where(after, *devices_where).order_by(*key).limit(laptops_per_batch)
            ).all()
            if not laptops:
                return
            last = (laptops[-1].group_name, laptops[-1].hostname, laptops[-1].id)
            chosen = [laptop.id for laptop in laptops]
            query = (
                select(people)
                .where(and_(where, among(people.c.device_id, chosen, connection.dialect.name)))
                .order_by(*report_order(people))
            )
            rows = [row_of(found, judgement) for found in connection.execute(query)]
        if rows:
            yield rows


def _streamed(
    connect: Callable[[], Connection],
    judgement: Judgement,
    people: Any,
    where: ColumnElement[bool],
    size: int,
) -> Iterator[list[SignOffRow]]:
    """On PostgreSQL: one query, judged for everyone at once and
    read through a server-side cursor `size` rows at a time. Holding one of PostgreSQL's many
    connections for the export is fine; SQLite's one connection is not, so it takes the batches."""
    with connect() as connection:
        query = select(people).where(where).order_by(*report_order(people))
        result = connection.execution_options(stream_results=True, yield_per=size).execute(query)
        for part in result.partitions():
            yield [row_of(found, judgement) for found in part]
