"""What each device adds to the overview's counts, and the ledger rows written when that changes.

A device counts once under its (school, OS, audience) as enrolled, and as reported, compliant, lost
and failing each requirement where its state says so (`Counted`). Every path that can change one
of those (a report, enrolment, a re-key or move, a lost case opened or closed) reads the device's
counted state before and after and inserts the difference (`changes`, pure) into
`fleet_count_changes`, in the same transaction: the counts are exactly as true as the rows they
count, and a path that changes nothing counted writes nothing (a steady report, every heartbeat).

Rows are inserted, never updated, so concurrent writers share no row to lock (server/db/count_models.py).
`homeroom-server counts` recounts from scratch and says where the ledger drifted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import Connection, Select, bindparam, exists, insert, literal_column, select

from contract.lost import LOST_STATUSES
from contract.requirements import CHECK_IDS
from server.db.count_models import FLEET_COUNT_CHANGES
from server.db.driver_statements import DriverStatement
from server.db.lost_models import LOST_CASES
from server.db.tables import DEVICE_INVENTORY, DEVICE_STATUS, DEVICES
from server.fleet.inventory_state import InventoryState
from server.group_commit import defer, write_deferred

DEVICES_MEASURE, REPORTED, COMPLIANT, LOST = "devices", "reported", "compliant", "lost"
FAIL_PREFIX = "fail:"
MEASURES = (DEVICES_MEASURE, REPORTED, COMPLIANT, LOST, *(FAIL_PREFIX + check for check in CHECK_IDS))

Key = tuple[str, str, str, str]  # school, os, audience, measure


def utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; everything stored is UTC (as server.auth.utc,
    which this module cannot import: server.auth imports the enrolment code that imports this)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Counted:
    school: str
    os: str
    audience: str
    reported: bool = False
    compliant: bool = False
    lost: bool = False
    failing: frozenset[str] = frozenset()

    def measures(self) -> list[str]:
        found = [DEVICES_MEASURE]
        found += [REPORTED] if self.reported else []
        found += [COMPLIANT] if self.compliant else []
        found += [LOST] if self.lost else []
        return found + [FAIL_PREFIX + check for check in CHECK_IDS if check in self.failing]


def failing_of(checks: Any) -> frozenset[str]:
    """The requirements a stored `device_status.checks` says fail (only the district's requirements)."""
    if not isinstance(checks, dict):
        return frozenset()
    return frozenset(check for check in CHECK_IDS if checks.get(check) == "fail")


def changes(before: Counted | None, after: Counted | None) -> list[tuple[Key, int]]:
    """Pure: the ledger rows that turn `before`'s contribution into `after`'s (None: no device),
    in a fixed order; nothing when nothing counted changed."""
    moved: Counter[Key] = Counter()
    for state, sign in ((before, -1), (after, 1)):
        if state is not None:
            for measure in state.measures():
                moved[(state.school, state.os, state.audience, measure)] += sign
    return sorted((key, delta) for key, delta in moved.items() if delta)


def lost_clause() -> Any:
    """A device is counted lost while its open case is a real one (not a drill) in a lost status:
    the same rule as the device list's lost filter (server.fleet.device_record.optional_column).
    The statuses are written into the SQL, not bound: an expanding IN is compiled again on every
    execution, which was a tenth of a report's server time."""
    return exists().where(
        LOST_CASES.c.id == DEVICES.c.lost_case_id,
        LOST_CASES.c.drill.is_(False),
        LOST_CASES.c.status.in_([literal_column(_quoted(status)) for status in sorted(LOST_STATUSES)]),
    )


def _quoted(word: str) -> str:
    if not word.replace("_", "").isalnum():  # the contract's own fixed names, never user input
        raise ValueError(f"not a status name: {word!r}")
    return f"'{word}'"


_STATE_COLUMNS = (
    DEVICES.c.group_name,
    DEVICES.c.os,
    DEVICES.c.audience,
    DEVICE_STATUS.c.device_id.label("status_of"),
    DEVICE_STATUS.c.reported_at,
    DEVICE_STATUS.c.overall,
    DEVICE_STATUS.c.checks,
)
_WITH_STATUS = DEVICES.outerjoin(DEVICE_STATUS, DEVICE_STATUS.c.device_id == DEVICES.c.id)


def _state_query() -> Select[Any]:
    return select(*_STATE_COLUMNS, lost_clause().label("lost")).select_from(_WITH_STATUS)


# Built once: building a select and its cache key on every report cost more than running it.
_STATE_OF = _state_query().where(DEVICES.c.id == bindparam("device_id"))
# The report path's one read after the lock: the counted state and the device's inventory state
# (`server.fleet.software_inventory.InventoryState`), which the lock on the device row guards too.
_REPORT_STATE_OF = DriverStatement(
    select(
        *_STATE_COLUMNS,
        lost_clause().label("lost"),
        DEVICE_INVENTORY.c.device_id.label("inventory_of"),
        DEVICE_INVENTORY.c.reported_at.label("inventory_reported_at"),
        DEVICE_INVENTORY.c.digest.label("inventory_digest"),
        DEVICE_INVENTORY.c["items"].label("inventory_items"),
        DEVICE_INVENTORY.c.listed_digest.label("inventory_listed_digest"),
        DEVICE_INVENTORY.c.listed_length.label("inventory_listed_length"),
    )
    .select_from(_WITH_STATUS.outerjoin(DEVICE_INVENTORY, DEVICE_INVENTORY.c.device_id == DEVICES.c.id))
    .where(DEVICES.c.id == bindparam("device_id"))
)
_LOCK_DEVICE = DriverStatement(
    select(DEVICES.c.id).where(DEVICES.c.id == bindparam("device_id")).with_for_update(key_share=True)
)


def _counted(row: Any) -> Counted:
    return Counted(
        school=row.group_name,
        os=row.os,
        audience=row.audience,
        reported=row.status_of is not None,
        compliant=row.overall == "pass",
        lost=bool(row.lost),
        failing=failing_of(row.checks),
    )


def _lock(connection: Connection, device_id: str) -> None:
    """SQLite has one writer at a time already; PostgreSQL's row lock orders writers per device.
    FOR NO KEY UPDATE, the lock an UPDATE of the row takes anyway: FOR UPDATE would conflict with
    the key-share lock this transaction's own `reports` insert (a foreign key) let another take
    first, and two reports of one laptop would deadlock."""
    if connection.dialect.name == "postgresql":
        _LOCK_DEVICE.execute(connection, {"device_id": device_id})


def read_state(connection: Connection, device_id: str) -> Counted | None:
    row = connection.execute(_STATE_OF, {"device_id": device_id}).first()
    return None if row is None else _counted(row)


def record(connection: Connection, before: Counted | None, after: Counted | None, day: date) -> None:
    rows = [
        {"day": day, "school": school, "os": os, "audience": audience, "measure": measure, "delta": delta}
        for (school, os, audience, measure), delta in changes(before, after)
    ]
    # Nothing in the transaction reads the ledger: a batch's rows go in with one statement (`defer`).
    for row in rows:
        defer(connection, _LEDGER_ROW, row, locks=False)  # new rows only: nobody waits for them


_LEDGER_ROW = DriverStatement(
    insert(FLEET_COUNT_CHANGES).values(
        {name: bindparam(name) for name in ("day", "school", "os", "audience", "measure", "delta")}
    )
)


@contextmanager
def recounted(connection: Connection, device_id: str, now: datetime) -> Iterator[None]:
    """Around a change to one device that is not on the report path (enrolment, re-key, lost
    cases): its counted state before and after, and the difference recorded. The row is locked
    before it is read (PostgreSQL), so a report for the same laptop committed meanwhile is not
    counted twice."""
    _lock(connection, device_id)
    before = read_state(connection, device_id)
    yield
    record(connection, before, read_state(connection, device_id), utc(now).date())


@dataclass(frozen=True)
class BeforeReport:
    state: Counted
    status_reported_at: datetime | None
    inventory: InventoryState | None = None


def before_report(connection: Connection, device_id: str) -> BeforeReport | None:
    """The report path's first statements: the device's row locked (PostgreSQL: another process's
    report for the same laptop waits here, then reads what that one committed), then one read of
    its counted state and its inventory state.

    The device row is the report's first lock, before any other row of the device (its inventory,
    its status): every path that locks more than one of a device's rows takes the device row first,
    and a batch takes its devices in id order (`server.group_commit`), so two transactions never
    wait for each other in a circle. The inventory row needs no lock of its own: every writer of
    it is a report, which holds the device row."""
    write_deferred(connection)  # the batch's earlier devices' rows first: one lock order
    _lock(connection, device_id)
    row = _REPORT_STATE_OF.first(connection, {"device_id": device_id})
    if row is None:
        return None
    inventory = (
        InventoryState(
            utc(row.inventory_reported_at),
            row.inventory_digest,
            row.inventory_items,
            row.inventory_listed_digest,
            row.inventory_listed_length,
        )
        if row.inventory_of is not None
        else None
    )
    return BeforeReport(
        _counted(row), utc(row.reported_at) if row.reported_at is not None else None, inventory
    )


def after_report(
    connection: Connection,
    before: BeforeReport | None,
    *,
    reported_at: datetime,
    overall: str,
    checks: dict[str, str],
    audience: str | None,
    now: datetime,
) -> None:
    """What the report changed, decided as the status upsert decides (a report older than the
    stored one leaves the status alone) and the device row's audience (kept when the report names none)."""
    if before is None:
        return
    after = before.state
    if audience:
        after = replace(after, audience=audience)
    if before.status_reported_at is None or before.status_reported_at <= reported_at:
        after = replace(after, reported=True, compliant=overall == "pass", failing=failing_of(checks))
    record(connection, before.state, after, utc(now).date())
