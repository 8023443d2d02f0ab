"""The console's device list: search, filters, sort and paging done by the database, and its CSV.

Every query starts from `Filters.where(scope)` (server.console.fleet_views), so the reader's schools
narrow the search, the filters, the count, the page and the export alike. "Requirement failing" is
a JSON query on the stored results, written once per database (SQLite's `json_each`, PostgreSQL's
`json_array_elements`). "Sign-off missing" is a clause on the one sign-off judgement
(`server.fleet.signoff_state.judged`, the Sign-offs page's and the overview's too): a laptop with a
person in any state but signed. The CSV holds the columns the page shows, cell for cell
(`requirement_status`), every one spreadsheet-safe, streamed in batches.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timezone
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, exists, func, or_, select, text

from contract.lost import LOST_STATUSES
from contract.requirements import CHECK_IDS
from server.console.fleet_views import Filters
from server.console.roles import Scope
from server.db.among import among
from server.db.tables import DEVICE_STATUS, DEVICES
from server.fleet.device_record import ASSET_TAG, LOST_STATUS, optional_column
from server.fleet.ingest import now_utc
from server.fleet.requirement_status import Cell, cells, cells_from_statuses
from server.fleet.signoff_state import SIGNED, judged, judgement_at
from server.fleet.signoffs import statuses_on
from server.fleet.spreadsheet import spreadsheet_safe

PAGE_SIZE = 50
CSV_BATCH = 1000
SORTS = ("hostname", "serial", "school", "os", "last_seen", "overall")


def lost_filter_available() -> bool:
    """The lost filter and column appear once `devices` has a lost status (issue 12's work)."""
    return optional_column(LOST_STATUS) is not None


def asset_tag_available() -> bool:
    return optional_column(ASSET_TAG) is not None


@dataclass(frozen=True)
class ListQuery:
    filters: Filters
    failing: str = ""  # a requirement id
    signoff_missing: bool = False
    not_seen_since: date | None = None
    lost: bool = False
    sort: str = "hostname"
    descending: bool = False

    def where(self, scope: Scope, dialect: str) -> ColumnElement[bool]:
        clauses = [self.filters.where(scope)]
        if self.failing in CHECK_IDS:
            clauses.append(failing_clause(dialect, self.failing))
        if self.not_seen_since is not None:
            cutoff = datetime.combine(self.not_seen_since, time.min, tzinfo=timezone.utc)
            clauses.append(or_(DEVICES.c.last_seen_at.is_(None), DEVICES.c.last_seen_at < cutoff))
        lost = optional_column(LOST_STATUS)
        if self.lost and lost is not None:
            clauses.append(lost.in_(sorted(LOST_STATUSES)))
        return and_(*clauses)

    def order(self) -> list[Any]:
        column = {
            "hostname": DEVICES.c.hostname,
            "serial": DEVICES.c.serial,
            "school": DEVICES.c.group_name,
            "os": DEVICES.c.os,
            "last_seen": DEVICES.c.last_seen_at,
            "overall": DEVICE_STATUS.c.overall,
        }[self.sort if self.sort in SORTS else "hostname"]
        first = column.desc() if self.descending else column.asc()
        return [first.nulls_last(), DEVICES.c.id]

    def as_params(self) -> dict[str, str]:
        """The query string that gives this list again (pager links, sort links, the CSV link)."""
        params = {
            "q": self.filters.search,
            "school": self.filters.school,
            "os": self.filters.os,
            "failing": self.failing,
            "signoff": "missing" if self.signoff_missing else "",
            "not_seen_since": self.not_seen_since.isoformat() if self.not_seen_since else "",
            "lost": "1" if self.lost else "",
            "sort": self.sort if self.sort != "hostname" else "",
            "dir": "desc" if self.descending else "",
        }
        return {key: value for key, value in params.items() if value}

    def sorted_by(self, column: str) -> ListQuery:
        """The same list sorted by `column`: ascending, or the other way if it is sorted by it already."""
        return replace(self, sort=column, descending=self.sort == column and not self.descending)


def failing_clause(dialect: str, check_id: str) -> ColumnElement[bool]:
    """True where the device's current results hold `check_id` with status "fail"."""
    if dialect == "postgresql":
        sql = (
            "EXISTS (SELECT 1 FROM json_array_elements(CASE WHEN json_typeof(device_status.results) = "
            "'array' THEN device_status.results ELSE '[]'::json END) AS r "
            "WHERE r->>'id' = :failing_id AND r->>'status' = 'fail')"
        )
    else:
        sql = (
            "EXISTS (SELECT 1 FROM json_each(device_status.results) AS r "
            "WHERE json_extract(r.value, '$.id') = :failing_id "
            "AND json_extract(r.value, '$.status') = 'fail')"
        )
    return text(sql).bindparams(failing_id=check_id)  # type: ignore[return-value]


def _columns(statuses_only: bool = False) -> list[Any]:
    """The list's columns; `statuses_only` reads `device_status.checks` instead of the results
    (the export: `_export_cells`)."""
    chosen = [
        DEVICES.c.id,
        DEVICES.c.hostname,
        DEVICES.c.serial,
        DEVICES.c.group_name,
        DEVICES.c.os,
        DEVICES.c.last_seen_at,
        DEVICE_STATUS.c.overall,
        DEVICE_STATUS.c.checks if statuses_only else DEVICE_STATUS.c.results,
        DEVICE_STATUS.c.device_id.label("reported"),
    ]
    chosen += [
        column.label(name)
        for name in (ASSET_TAG, LOST_STATUS)
        if (column := optional_column(name)) is not None
    ]
    return chosen


def _base(columns: Iterable[Any], after: str | None = None) -> Select[Any]:
    """`after`: a keyset batch's last id, repeated in the join (see `fleet_views._with_status`);
    the caller's WHERE says `devices.id > after`."""
    on = DEVICE_STATUS.c.device_id == DEVICES.c.id
    if after is not None:
        on = and_(on, DEVICE_STATUS.c.device_id > after)
    return select(*columns).select_from(DEVICES.outerjoin(DEVICE_STATUS, on))


@dataclass(frozen=True)
class ListedDevice:
    id: str
    hostname: str
    serial: str
    asset_tag: str
    users: str
    school: str
    os: str
    last_seen: str
    overall: str
    cells: dict[str, Cell]
    signoff: str
    signoff_missing: bool
    lost: str


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def signoff_state(rows: list[tuple[str, str]]) -> tuple[str, bool]:
    """What the sign-off cell says for one device's users ((user, status) each), and whether a
    sign-off is missing."""
    if not rows:
        return "no user seen yet", False
    waiting = [(user, status) for user, status in rows if status != "signed"]
    if not waiting:
        return f"signed ({len(rows)} of {len(rows)})", False
    named = ", ".join(f"{user}: {status}" for user, status in waiting[:3])
    more = f" and {len(waiting) - 3} more" if len(waiting) > 3 else ""
    return f"missing ({len(rows) - len(waiting)} of {len(rows)} signed; {named}{more})", True


CellsOf = Callable[[Any], dict[str, Cell]]


def _page_cells(row: Any) -> dict[str, Cell]:
    return cells(row.results, row.reported is not None)


def _export_cells(connection: Connection, rows: list[Any]) -> CellsOf:
    """The cells of rows read with `statuses_only`: from the statuses where they say it all, and
    from the results, read for those devices alone, where a cell must give the laptop's reason. At
    100,000 devices that spares parsing every result's evidence (about 2.5 KB a laptop)."""
    quick = {row.id: cells_from_statuses(row.checks, row.reported is not None) for row in rows}
    slow = [device_id for device_id, found in quick.items() if found is None]
    results: dict[str, Any] = {}
    if slow:
        query = select(DEVICE_STATUS.c.device_id, DEVICE_STATUS.c.results).where(
            among(DEVICE_STATUS.c.device_id, slow, connection.dialect.name)
        )
        results = {found.device_id: found.results for found in connection.execute(query)}

    def of(row: Any) -> dict[str, Cell]:
        found = quick[row.id]
        return found if found is not None else cells(results.get(row.id), row.reported is not None)

    return of


def _listed(connection: Connection, rows: list[Any], cells_of: CellsOf = _page_cells) -> list[ListedDevice]:
    ids = [row.id for row in rows]
    # Each laptop's people with their sign-off status, by user: the users column and the sign-off
    # cell from one read.
    signoffs = statuses_on(connection, ids, now_utc()) if ids else {}
    listed = []
    for row in rows:
        seen = _utc(row.last_seen_at)
        people = signoffs.get(row.id, [])
        signoff, missing = signoff_state(people)
        listed.append(
            ListedDevice(
                id=row.id,
                hostname=row.hostname,
                serial=row.serial or "",
                asset_tag=str(getattr(row, ASSET_TAG, "") or ""),
                users=", ".join(user for user, _status in people),
                school=row.group_name,
                os=row.os,
                last_seen=seen.isoformat(timespec="minutes") if seen else "never",
                overall=row.overall or "not reported yet",
                cells=cells_of(row),
                signoff=signoff,
                signoff_missing=missing,
                lost=str(getattr(row, LOST_STATUS, "") or ""),
            )
        )
    return listed


def signoff_missing(connection: Connection, now: datetime) -> ColumnElement[bool]:
    """Devices with a person who has not signed what applies at `now` (never signed, a changed
    version, past renewal, no policy) or declined it: any state but signed, in the one judgement."""
    judgement = judgement_at(connection, now)
    people = judged(judgement).subquery("people")
    return exists().where(people.c.device_id == DEVICES.c.id, people.c.standing != SIGNED)


def device_page(
    connection: Connection, scope: Scope, query: ListQuery, page: int
) -> tuple[list[ListedDevice], int]:
    """One page of the list and how many devices match in all."""
    where = query.where(scope, connection.dialect.name)
    if query.signoff_missing:
        where = and_(where, signoff_missing(connection, now_utc()))
    total = connection.execute(
        select(func.count()).select_from(_base([DEVICES.c.id]).where(where).subquery())
    )
    rows = connection.execute(
        _base(_columns()).where(where).order_by(*query.order()).limit(PAGE_SIZE).offset(page * PAGE_SIZE)
    ).all()
    return _listed(connection, list(rows)), int(total.scalar_one())


@dataclass(frozen=True)
class CsvColumns:
    """Which optional columns the export holds, decided once per export: asking `optional_column`
    builds SQL, too dear to do for each of 100,000 rows."""

    asset_tag: bool
    lost: bool

    @classmethod
    def now(cls) -> CsvColumns:
        return cls(asset_tag=asset_tag_available(), lost=lost_filter_available())

    def header(self) -> list[str]:
        header = ["hostname", "serial"]
        if self.asset_tag:
            header.append("asset_tag")
        header += ["users", "school", "os", "last_seen", "overall", *CHECK_IDS, "signoff"]
        if self.lost:
            header.append("lost")
        return header

    def values(self, device: ListedDevice) -> list[str]:
        values = [device.hostname, device.serial]
        if self.asset_tag:
            values.append(device.asset_tag)
        values += [device.users, device.school, device.os, device.last_seen, device.overall]
        values += [device.cells[check].text for check in CHECK_IDS]
        values.append(device.signoff)
        if self.lost:
            values.append(device.lost)
        return values


def csv_lines(rows: Iterable[list[str]]) -> str:
    """CSV lines of `rows`, every cell spreadsheet-safe, through one writer."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerows([spreadsheet_safe(value) for value in values] for values in rows)
    return out.getvalue()


def devices_csv(connect: Callable[[], Connection], scope: Scope, query: ListQuery) -> Iterator[str]:
    """The filtered list, every page of it, `CSV_BATCH` devices at a time, each batch on a connection
    of its own (a long export must not hold SQLite's one connection while reports wait). In the
    order of the device ids: a keyset that stays right while reports change the sorted columns."""
    columns = CsvColumns.now()
    yield csv_lines([columns.header()])
    last = ""
    while True:
        with connect() as connection:
            where = and_(query.where(scope, connection.dialect.name), DEVICES.c.id > last)
            if query.signoff_missing:
                where = and_(where, signoff_missing(connection, now_utc()))
            rows = connection.execute(
                _base(_columns(statuses_only=True), after=last)
                .where(where)
                .order_by(DEVICES.c.id)
                .limit(CSV_BATCH)
            ).all()
            if not rows:
                return
            last = rows[-1].id
            kept = list(rows)
            listed = _listed(connection, kept, _export_cells(connection, kept))
        yield csv_lines(columns.values(device) for device in listed)
