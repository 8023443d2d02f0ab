"""Reading the overview's roll-up (server/fleet/counted.py writes it), recounting it from scratch,
and folding past days' rows.

`read_ledger` sums the ledger per day and measure for the reader's schools and filters: the
current counts are the sums over every day, and the count at the end of a day the sums up to it.
`recount` counts the same measures from `devices`, `device_status` and `lost_cases` (the slow way,
for the migration, `homeroom-server counts` and the tests); `drift` compares the two, and
`correct` writes the difference as today's rows, so the past days' figures are kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, false, func, insert, or_, select, true

from contract.requirements import CHECK_IDS
from server.db.count_models import FLEET_COUNT_CHANGES
from server.db.tables import DEVICE_STATUS, DEVICES
from server.fleet.counted import COMPLIANT, DEVICES_MEASURE, FAIL_PREFIX, LOST, REPORTED, Key, lost_clause

# Rows older than this many days are folded into one row per measure on the oldest kept day: the
# chart reaches back 90 days.
KEPT_DAYS = 100
LEDGER = FLEET_COUNT_CHANGES


@dataclass
class Ledger:
    """Per day, per measure, the sum of the changes of that day (for the rows read)."""

    days: dict[date, Counter[str]] = field(default_factory=dict)

    @property
    def began(self) -> date | None:
        """The first day counted: days before it have no figures (not zeros)."""
        return min(self.days) if self.days else None

    def totals(self) -> Counter[str]:
        return self.up_to(date.max)

    def up_to(self, day: date) -> Counter[str]:
        summed: Counter[str] = Counter()
        for when, sums in self.days.items():
            if when <= day:
                summed.update(sums)
        return summed

    def at_end_of_days(self, first: date, last: date) -> list[tuple[date, Counter[str] | None]]:
        """Each day's counts at its end, oldest first; None for a day before the ledger began."""
        running = self.up_to(first - timedelta(days=1))
        out: list[tuple[date, Counter[str] | None]] = []
        began = self.began
        day = first
        while day <= last:
            running.update(self.days.get(day, Counter()))
            out.append((day, Counter(running) if began is not None and day >= began else None))
            day += timedelta(days=1)
        return out


def where(school_clause: ColumnElement[bool], school: str, os: str, audience: str) -> ColumnElement[bool]:
    """The ledger rows of the reader's schools (`school_clause`, on `LEDGER.c.school`) and filters."""
    clauses = [school_clause]
    if school:
        clauses.append(LEDGER.c.school == school)
    if os:
        clauses.append(LEDGER.c.os == os)
    if audience:
        clauses.append(LEDGER.c.audience == audience)
    return and_(true(), *clauses)


def read_ledger(connection: Connection, clause: ColumnElement[bool]) -> Ledger:
    rows = connection.execute(
        select(LEDGER.c.day, LEDGER.c.measure, func.sum(LEDGER.c.delta).label("delta"))
        .where(clause)
        .group_by(LEDGER.c.day, LEDGER.c.measure)
    )
    ledger = Ledger()
    for row in rows:
        ledger.days.setdefault(row.day, Counter())[row.measure] += int(row.delta)
    return ledger


def with_devices(connection: Connection, column: Any, clause: ColumnElement[bool]) -> list[str]:
    """The values of a key column (school, os) that have at least one device, among `clause`'s rows."""
    devices = func.sum(LEDGER.c.delta).filter(LEDGER.c.measure == DEVICES_MEASURE)
    rows = connection.execute(select(column).where(clause).group_by(column).having(devices > 0))
    return [str(value) for value in rows.scalars()]


def recount(connection: Connection) -> Counter[Key]:
    """Every measure of every (school, os, audience), counted from the stored state."""
    failing = [
        func.count().filter(DEVICE_STATUS.c.checks[check].as_string() == "fail").label(check)
        for check in CHECK_IDS
    ]
    query = (
        select(
            DEVICES.c.group_name,
            DEVICES.c.os,
            DEVICES.c.audience,
            func.count().label("devices"),
            func.count(DEVICE_STATUS.c.device_id).label("reported"),
            func.count().filter(DEVICE_STATUS.c.overall == "pass").label("compliant"),
            func.count().filter(lost_clause()).label("lost"),
            *failing,
        )
        .select_from(DEVICES.outerjoin(DEVICE_STATUS, DEVICE_STATUS.c.device_id == DEVICES.c.id))
        .group_by(DEVICES.c.group_name, DEVICES.c.os, DEVICES.c.audience)
    )
    counted: Counter[Key] = Counter()
    for row in connection.execute(query):
        key = (row.group_name, row.os, row.audience)
        counted[(*key, DEVICES_MEASURE)] = row.devices
        counted[(*key, REPORTED)] = row.reported
        counted[(*key, COMPLIANT)] = row.compliant
        counted[(*key, LOST)] = row.lost
        for check in CHECK_IDS:
            counted[(*key, FAIL_PREFIX + check)] = int(row._mapping[check])
    return +counted  # zeros dropped


def ledger_totals(connection: Connection) -> Counter[Key]:
    rows = connection.execute(
        select(
            LEDGER.c.school, LEDGER.c.os, LEDGER.c.audience, LEDGER.c.measure, func.sum(LEDGER.c.delta)
        ).group_by(LEDGER.c.school, LEDGER.c.os, LEDGER.c.audience, LEDGER.c.measure)
    )
    totals: Counter[Key] = Counter()
    for school, os, audience, measure, delta in rows:
        totals[(school, os, audience, measure)] = int(delta)
    return totals


def drift(connection: Connection) -> dict[Key, tuple[int, int]]:
    """Where the ledger and a full recount disagree: key -> (in the ledger, counted)."""
    kept, counted = ledger_totals(connection), recount(connection)
    keys = sorted(set(kept) | set(counted))
    return {key: (kept[key], counted[key]) for key in keys if kept[key] != counted[key]}


def correct(connection: Connection, found: dict[Key, tuple[int, int]], today: date) -> int:
    """The difference written as today's rows: the ledger equals the recount from now on."""
    rows = [
        {"day": today, "school": k[0], "os": k[1], "audience": k[2], "measure": k[3], "delta": new - old}
        for k, (old, new) in found.items()
    ]
    if rows:
        connection.execute(insert(LEDGER), rows)
    return len(rows)


def fill(connection: Connection, today: date) -> int:
    """The ledger's first rows, from what is stored (the migration; an empty ledger)."""
    return correct(connection, drift(connection), today)


def _due(today: date) -> ColumnElement[bool]:
    boundary = today - timedelta(days=KEPT_DAYS)
    return or_(and_(LEDGER.c.folded == false(), LEDGER.c.day < today), LEDGER.c.day < boundary)


def compaction_due(connection: Connection, today: date) -> bool:
    return connection.execute(select(LEDGER.c.id).where(_due(today)).limit(1)).first() is not None


def compact(connection: Connection, today: date) -> int:
    """Past days' rows summed into one row per day, key and measure; days older than `KEPT_DAYS`
    into the oldest kept day. The rows are deleted with RETURNING and only what this transaction
    deleted is summed, so two processes compacting at once cannot count a row twice."""
    boundary = today - timedelta(days=KEPT_DAYS)
    taken = connection.execute(
        delete(LEDGER)
        .where(_due(today))
        .returning(
            LEDGER.c.day, LEDGER.c.school, LEDGER.c.os, LEDGER.c.audience, LEDGER.c.measure, LEDGER.c.delta
        )
    ).all()
    summed = _folded(taken, boundary)
    rows = [
        {"day": d, "school": s, "os": o, "audience": a, "measure": m, "delta": n, "folded": True}
        for (d, s, o, a, m), n in sorted(summed.items())
        if n
    ]
    if rows:
        connection.execute(insert(LEDGER), rows)
    return len(taken)


def _folded(taken: Iterable[Any], boundary: date) -> Counter[tuple[date, str, str, str, str]]:
    summed: Counter[tuple[date, str, str, str, str]] = Counter()
    for day, school, os, audience, measure, delta in taken:
        summed[(max(day, boundary), school, os, audience, measure)] += int(delta)
    return summed


def fold_past_days(engine: Engine, today: date) -> None:
    """What the overview does before it reads: on the first read of a day, yesterday's rows are
    folded (one short write transaction); every other read costs one indexed lookup. Call it with
    no connection of the engine open (SQLite's engine has one)."""
    with engine.connect().execution_options(homeroom_read_only=True) as connection:
        due = compaction_due(connection, today)
    if due:
        with engine.begin() as connection:
            compact(connection, today)
