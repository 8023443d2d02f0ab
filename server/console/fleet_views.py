"""What the console's fleet pages read: the overview's counts and the device list, always
narrowed by the reader's `Scope`. The overview's counts come from the roll-up written in the same
transaction as every change it counts (server/fleet/counted.py), so a count is never older than
the last report; the list reads `devices` and `device_status` (one row per laptop)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, func, insert, or_, select, true, union, update
from sqlalchemy.orm import Session

from contract.requirements import CHECK_IDS
from server.console import signoff_coverage
from server.console.roles import Scope
from server.db.tables import COMMANDS, DEVICE_STATUS, DEVICE_USERS, DEVICES
from server.fleet import counted, counts
from server.fleet.spreadsheet import spreadsheet_safe

PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    school: str = ""
    os: str = ""
    search: str = ""
    audience: str = ""  # "staff" | "student" | "" (both)

    def where(self, scope: Scope) -> ColumnElement[bool]:
        clauses: list[ColumnElement[bool]] = [scope.where(DEVICES.c.group_name)]
        if self.school:
            clauses.append(DEVICES.c.group_name == self.school)
        if self.os:
            clauses.append(DEVICES.c.os == self.os)
        if self.audience:
            clauses.append(DEVICES.c.audience == self.audience)
        if self.search:
            clauses.append(search_clause(self.search))
        return and_(true(), *clauses)

    def people_where(self, people: Any, scope: Scope) -> ColumnElement[bool]:
        """The same choice of laptops for the people on them (`signoff_state.judged`'s columns): on
        their copies of the laptop's school and audience, which reads no `devices`; the OS and a
        search, which only `devices` holds, as the laptops those select."""
        clauses: list[ColumnElement[bool]] = [scope.where(people.c.group_name)]
        if self.school:
            clauses.append(people.c.group_name == self.school)
        if self.audience:
            clauses.append(people.c.audience == self.audience)
        if self.os or self.search:
            laptops = Filters(os=self.os, search=self.search).where(Scope(None))
            clauses.append(people.c.device_id.in_(select(DEVICES.c.id).where(laptops)))
        return and_(true(), *clauses)


SEARCHED_COLUMNS = ("hostname", "serial", "asset_tag")
# pg_trgm finds nothing to look up in a shorter search: its index would be read whole.
TRIGRAM = 3


def like_pattern(search: str) -> str:
    """`search` anywhere in the value, its `%`, `_` and `\\` taken literally (a user `j_smith`)."""
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_matches(search: str) -> Any:
    """The ids of devices whose hostname, serial, asset tag or one of whose users holds `search`, in
    any case. One UNION of a query per column, each of which PostgreSQL answers from the column's
    trigram index (migration 0013); an OR over the columns and the users would be one scan of all."""
    pattern = like_pattern(search)
    columns = [DEVICES.c[name] for name in SEARCHED_COLUMNS if name in DEVICES.c]
    return union(
        *[select(DEVICES.c.id).where(column.ilike(pattern, escape="\\")) for column in columns],
        select(DEVICE_USERS.c.device_id).where(DEVICE_USERS.c.user.ilike(pattern, escape="\\")),
    )


def search_clause(search: str) -> ColumnElement[bool]:
    """True for the devices `search` finds. One or two letters hold no trigram: PostgreSQL would read
    each trigram index whole (slower than scanning, measured), so a short search is one scan of the
    devices, each column and then the device's users tried in turn."""
    if len(search) >= TRIGRAM:
        return DEVICES.c.id.in_(search_matches(search))
    pattern = like_pattern(search.lower())
    columns = [DEVICES.c[name] for name in SEARCHED_COLUMNS if name in DEVICES.c]
    return or_(
        *[func.lower(column).like(pattern, escape="\\") for column in columns],
        exists().where(
            DEVICE_USERS.c.device_id == DEVICES.c.id,
            func.lower(DEVICE_USERS.c.user).like(pattern, escape="\\"),
        ),
    )


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass
class Overview:
    total: int = 0
    compliant: int = 0
    not_seen: int = 0
    never_reported: int = 0
    failing: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHECK_IDS, 0))
    lost: int = 0
    signoff_people: int = 0
    signoff_signed: int = 0

    @property
    def compliant_share(self) -> float:
        return self.compliant / self.total if self.total else 0.0

    @property
    def signoff_share(self) -> float:
        return self.signoff_signed / self.signoff_people if self.signoff_people else 0.0


def ledger_where(scope: Scope, filters: Filters) -> ColumnElement[bool]:
    """The roll-up's rows the reader's schools and the overview's filters select."""
    return counts.where(scope.where(counts.LEDGER.c.school), filters.school, filters.os, filters.audience)


def overview(session: Session, scope: Scope, filters: Filters, not_seen_days: int, now: datetime) -> Overview:
    """The counts from the roll-up kept at ingest (server/fleet/counted.py: exact, a few hundred
    rows), the devices not seen since the cutoff from `devices` (it depends on now), plus the
    sign-off coverage."""
    connection = session.connection()
    totals = counts.read_ledger(connection, ledger_where(scope, filters)).totals()
    cutoff = now - timedelta(days=not_seen_days)
    # Two counts, each an index range on `last_seen_at` (one OR would scan the whole index).
    silent, never = (
        select(func.count()).select_from(DEVICES).where(filters.where(scope), seen).scalar_subquery()
        for seen in (DEVICES.c.last_seen_at < cutoff, DEVICES.c.last_seen_at.is_(None))
    )
    not_seen = connection.execute(select(silent + never)).scalar_one()
    people, signed = signoff_coverage.counts(session, now, partial(filters.people_where, scope=scope))
    return Overview(
        total=totals[counted.DEVICES_MEASURE],
        compliant=totals[counted.COMPLIANT],
        not_seen=int(not_seen),
        never_reported=totals[counted.DEVICES_MEASURE] - totals[counted.REPORTED],
        failing={check: totals[counted.FAIL_PREFIX + check] for check in CHECK_IDS},
        lost=totals[counted.LOST],
        signoff_people=people,
        signoff_signed=signed,
    )


def _with_status(after: str | None = None) -> Any:
    """Each device with its status row. `after` is a keyset export's last device id, said again in
    the join so that PostgreSQL's merge join starts reading the status index there too: it cannot
    infer it, and from the index's first row a batch of 1,000 in the middle of 100,000 devices
    took 250 ms instead of 2."""
    on = DEVICE_STATUS.c.device_id == DEVICES.c.id
    if after is not None:
        on = and_(on, DEVICE_STATUS.c.device_id > after)
    return DEVICES.outerjoin(DEVICE_STATUS, on)


def schools(connection: Connection, scope: Scope) -> list[str]:
    """The schools with devices (from the roll-up: a few rows, not a pass over `devices`), and
    the reader's assigned ones even while they have none."""
    found = set(counts.with_devices(connection, counts.LEDGER.c.school, scope.where(counts.LEDGER.c.school)))
    if scope.schools is not None:
        found |= scope.schools
    return sorted(found)


def operating_systems(connection: Connection, scope: Scope) -> list[str]:
    return sorted(counts.with_devices(connection, counts.LEDGER.c.os, scope.where(counts.LEDGER.c.school)))


@dataclass(frozen=True)
class DeviceRow:
    id: str
    hostname: str
    serial: str
    school: str
    os: str
    last_seen: str
    overall: str
    checks: dict[str, str]


def _device_row(row: Any) -> DeviceRow:
    seen = _utc(row.last_seen_at)
    checks = {str(check): str(status) for check, status in (row.checks or {}).items()}
    return DeviceRow(
        id=row.id,
        hostname=row.hostname,
        serial=row.serial or "",
        school=row.group_name,
        os=row.os,
        last_seen=seen.isoformat(timespec="minutes") if seen else "never",
        overall=row.overall or "not reported yet",
        checks=checks,
    )


def _device_query(scope: Scope, filters: Filters, after: str | None = None) -> Any:
    """The list's rows; `after`: only devices after that id (a keyset batch of the export)."""
    query = (
        select(
            DEVICES.c.id,
            DEVICES.c.hostname,
            DEVICES.c.serial,
            DEVICES.c.group_name,
            DEVICES.c.os,
            DEVICES.c.last_seen_at,
            DEVICE_STATUS.c.overall,
            # The statuses alone: a page or an export of 100,000 rows never parses the evidence.
            DEVICE_STATUS.c.checks,
        )
        .select_from(_with_status(after))
        .where(filters.where(scope))
    )
    return query if after is None else query.where(DEVICES.c.id > after)


def device_page(
    connection: Connection, scope: Scope, filters: Filters, page: int
) -> tuple[list[DeviceRow], int]:
    query = _device_query(scope, filters)
    total = connection.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = connection.execute(
        query.order_by(DEVICES.c.hostname, DEVICES.c.id).limit(PAGE_SIZE).offset(page * PAGE_SIZE)
    )
    return [_device_row(row) for row in rows], int(total)


CSV_FIELDS = ("hostname", "serial", "school", "os", "last_seen", "overall", *CHECK_IDS)


def devices_csv(connect: Callable[[], Connection], scope: Scope, filters: Filters) -> Iterator[str]:
    """The filtered list, streamed a thousand rows at a time, every cell spreadsheet-safe. Each
    batch has a connection of its own: on SQLite a process has one, and a long export must not
    hold it between batches while reports wait."""
    header = io.StringIO()
    csv.writer(header).writerow(CSV_FIELDS)
    yield header.getvalue()
    last = ""
    while True:
        with connect() as connection:
            rows = connection.execute(
                _device_query(scope, filters, after=last).order_by(DEVICES.c.id).limit(1000)
            ).all()
        if not rows:
            return
        out = io.StringIO()
        csv.writer(out).writerows([spreadsheet_safe(value) for value in _csv_values(row)] for row in rows)
        last = rows[-1].id
        yield out.getvalue()


def _csv_values(row: Any) -> list[str]:
    """One device's CSV cells, as `_device_row` shows them, without building it: per row of a
    100,000-row export the dataclass and its dict of checks were a fifth of the time."""
    seen = _utc(row.last_seen_at)
    checks = row.checks or {}
    return [
        row.hostname,
        row.serial or "",
        row.group_name,
        row.os,
        seen.isoformat(timespec="minutes") if seen else "never",
        row.overall or "not reported yet",
        *[str(checks[check]) if check in checks else "" for check in CHECK_IDS],
    ]


@dataclass(frozen=True)
class DeviceDetail:
    row: DeviceRow
    manufacturer: str
    model: str
    os_version: str
    enrolled_at: str
    results: list[dict[str, Any]]


def device_detail(connection: Connection, scope: Scope, device_id: str) -> DeviceDetail | None:
    """None for a device that does not exist *and* for one outside the reader's schools: a guessed
    id answers the same either way."""
    row = connection.execute(
        _device_query(scope, Filters())
        .add_columns(
            DEVICES.c.manufacturer,
            DEVICES.c.model,
            DEVICES.c.os_version,
            DEVICES.c.enrolled_at,
            DEVICE_STATUS.c.results,
        )
        .where(DEVICES.c.id == device_id)
    ).first()
    if row is None:
        return None
    enrolled = _utc(row.enrolled_at)
    return DeviceDetail(
        row=_device_row(row),
        manufacturer=row.manufacturer or "",
        model=row.model or "",
        os_version=row.os_version,
        enrolled_at=enrolled.isoformat(timespec="minutes") if enrolled else "",
        results=[r for r in (row.results or []) if isinstance(r, dict)],
    )


def ask_check_now(connection: Connection, device_id: str) -> None:
    """The command the next heartbeat carries (the same rows `homeroom-server command` writes)."""
    connection.execute(
        insert(COMMANDS).values(
            device_id=device_id, command="check_now", created_at=datetime.now(timezone.utc)
        )
    )
    connection.execute(update(DEVICES).where(DEVICES.c.id == device_id).values(commands_pending=True))
