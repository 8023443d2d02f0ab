"""Each device's current software inventory and its history, kept inside the report's transaction.

A report used to be stored with its whole package list (about 56 KB on a Debian laptop, every
report). Now the list is kept once per device (`device_software`) and the history
(`software_changes`) grows by what changed: a report with the inventory already stored costs a
digest comparison and one small update. The diff itself is `software_diff`, pure.

Concurrent reports of one device (several server processes on PostgreSQL) take turns on the
device's row, locked before anything of the device is read (`server.fleet.counted.before_report`),
which reads the inventory state too; on SQLite every write transaction already holds the
database's one write lock.

A laptop's list rarely changes, and parsing, validating and hashing a few hundred items was most of
a report's server time: `server.fleet.report_body` compares the list's bytes as sent with those the
stored inventory came from (`listed_digest`, `listed_length`) before anything parses it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from server.auth import utc
from server.db.driver_statements import DriverStatement
from server.db.statements import insert_if_new
from server.db.tables import DEVICE_INVENTORY, DEVICE_SOFTWARE, SOFTWARE_CHANGES
from server.fleet.inventory_state import InventoryState
from server.fleet.software_diff import Change, Installed, ReportedItem, diff, inventory_digest, inventory_from

# Rows per statement: well under SQLite's and psycopg's parameter limits for the widest rows.
BATCH = 500


@dataclass(frozen=True)
class ReportedInventory:
    """A report's inventory, read before anything is stored (pure): its items by key and their digest."""

    items: dict[str, Installed]
    digest: str

    @classmethod
    def of(cls, items: Iterable[ReportedItem]) -> ReportedInventory:
        chosen = inventory_from(items)
        return cls(chosen, inventory_digest(chosen))

    def summary(self) -> dict[str, Any]:
        """What the stored report keeps instead of the list: enough to tie it to an inventory state."""
        return {"software_items": len(self.items), "software_digest": self.digest if self.items else None}


@dataclass(frozen=True)
class Listed:
    """A report's software list as it was sent: the SHA-256 and length of its very bytes in the body
    (`server.fleet.report_body`), what tells the same list sent again."""

    digest: str
    length: int


@dataclass(frozen=True)
class InventoryPlan:
    """What a report's list is, decided with its device's inventory row locked (`report_body`)."""

    state: InventoryState | None  # the device's stored inventory, read with its row locked; else None
    reported: ReportedInventory | None  # validated; None: no list, or the very list already stored
    listed: Listed | None = None  # the list's bytes as sent, when they could be told apart

    def summary(self) -> dict[str, Any]:
        """What the stored report keeps instead of the list (`ReportedInventory.summary`)."""
        if self.reported is not None:
            return self.reported.summary()
        if self.state is not None:
            return {"software_items": self.state.items, "software_digest": self.state.digest}
        return {"software_items": 0, "software_digest": None}


LOCK_STATE = (
    select(
        DEVICE_INVENTORY.c.reported_at,
        DEVICE_INVENTORY.c.digest,
        DEVICE_INVENTORY.c["items"],  # not `.c.items`: that is the collection's own method
        DEVICE_INVENTORY.c.listed_digest,
        DEVICE_INVENTORY.c.listed_length,
    )
    .where(DEVICE_INVENTORY.c.device_id == bindparam("device_id"))
    .with_for_update()
)
MOVE_STATE = DriverStatement(
    update(DEVICE_INVENTORY)
    .where(DEVICE_INVENTORY.c.device_id == bindparam("b_device_id"))
    .values(
        report_id=bindparam("b_report_id"),
        reported_at=bindparam("b_reported_at"),
        digest=bindparam("b_digest"),
        items=bindparam("b_items"),
        listed_digest=bindparam("b_listed_digest"),
        listed_length=bindparam("b_listed_length"),
    )
)
REWRITE_ITEM = (
    update(DEVICE_SOFTWARE)
    .where(
        DEVICE_SOFTWARE.c.device_id == bindparam("b_device"), DEVICE_SOFTWARE.c.item_key == bindparam("b_key")
    )
    .values(
        version=bindparam("b_version"),
        publisher=bindparam("b_publisher"),
        judged=bindparam("b_judged"),
        basis=bindparam("b_basis"),
        since=bindparam("b_since"),
    )
)


def steady_move(plan: InventoryPlan, reported_at: datetime) -> dict[str, Any] | None:
    """For a report with no list to apply (`plan.reported` None: the stored list again, or none), what
    `store_inventory` would write to the device's inventory row (digest, items, listed_digest,
    listed_length; the caller adds the report), or None where it leaves the row alone: no
    inventory, or one from a newer report than this (delayed by an outage)."""
    state = plan.state
    if plan.reported is not None or state is None or reported_at < utc(state.reported_at):
        return None
    return {
        "digest": state.digest,
        "items": state.items,
        "listed_digest": plan.listed.digest if plan.listed else None,
        "listed_length": plan.listed.length if plan.listed else None,
    }


def store_inventory(
    connection: Connection, device_id: str, report_id: str, reported_at: datetime, plan: InventoryPlan
) -> int:
    """Brings the device's inventory to the report's; returns how many history rows it added.

    A report with no software list (the requirement is off, or every inventory failed to read)
    leaves the inventory as it was: an empty list is not "everything was removed". A report dated
    before the stored inventory's report (delayed by an outage, sent after a newer one) does not
    take the inventory back in time.
    """
    reported, state = plan.reported, plan.state
    if (reported is None and state is None) or (reported is not None and not reported.items):
        return 0
    summary = plan.summary()
    state_values = {
        "device_id": device_id,
        "report_id": report_id,
        "reported_at": reported_at,
        "digest": summary["software_digest"],
        "items": summary["software_items"],
        "listed_digest": plan.listed.digest if plan.listed else None,
        "listed_length": plan.listed.length if plan.listed else None,
    }
    if state is None:
        assert reported is not None  # a list not stored before is always validated
        if insert_if_new(connection, DEVICE_INVENTORY, state_values):
            return _apply(connection, device_id, report_id, reported_at, {}, reported.items)
        # Stored meanwhile (a path that did not hold the device row): take turns with it.
        row = connection.execute(LOCK_STATE, {"device_id": device_id}).one()
        state = InventoryState(
            row.reported_at, row.digest, row._mapping["items"], row.listed_digest, row.listed_length
        )
    if reported_at < utc(state.reported_at):  # SQLite gives back naive UTC
        return 0
    MOVE_STATE.execute(connection, {f"b_{name}": value for name, value in state_values.items()})
    if reported is None or state.digest == reported.digest:
        return 0
    return _apply(
        connection, device_id, report_id, reported_at, _current(connection, device_id), reported.items
    )


def _current(connection: Connection, device_id: str) -> dict[str, Installed]:
    rows = connection.execute(
        select(
            DEVICE_SOFTWARE.c.item_key,
            DEVICE_SOFTWARE.c.name,
            DEVICE_SOFTWARE.c.source,
            DEVICE_SOFTWARE.c.version,
            DEVICE_SOFTWARE.c.publisher,
            DEVICE_SOFTWARE.c.judged,
            DEVICE_SOFTWARE.c.basis,
        ).where(DEVICE_SOFTWARE.c.device_id == device_id)
    )
    return {
        row.item_key: Installed(row.name, row.source, row.version, row.publisher, row.judged, row.basis)
        for row in rows
    }


def _apply(
    connection: Connection,
    device_id: str,
    report_id: str,
    reported_at: datetime,
    current: dict[str, Installed],
    new: dict[str, Installed],
) -> int:
    changes, quiet = diff(current, new)
    removed = [change.item.key for change in changes if change.kind == "removed"]
    for batch in _batches(removed):
        connection.execute(
            delete(DEVICE_SOFTWARE).where(
                DEVICE_SOFTWARE.c.device_id == device_id, DEVICE_SOFTWARE.c.item_key.in_(batch)
            )
        )
    added = [
        {
            "device_id": device_id,
            "item_key": change.item.key,
            **_columns(change.item),
            "basis": change.item.basis,
            "since": reported_at,
        }
        for change in changes
        if change.kind == "added"
    ]
    for batch in _batches(added):
        connection.execute(insert(DEVICE_SOFTWARE), batch)
    rewritten = [change.item for change in changes if change.kind == "changed"] + quiet
    rewrites = [
        {
            "b_device": device_id,
            "b_key": item.key,
            "b_version": item.version,
            "b_publisher": item.publisher,
            "b_judged": item.judged,
            "b_basis": item.basis,
            "b_since": reported_at,
        }
        for item in rewritten
    ]
    for batch in _batches(rewrites):
        connection.execute(REWRITE_ITEM, batch)
    history = [_history_row(device_id, report_id, reported_at, change) for change in changes]
    for batch in _batches(history):
        connection.execute(insert(SOFTWARE_CHANGES), batch)
    return len(history)


def _columns(item: Installed) -> dict[str, Any]:
    return {
        "name": item.name,
        "source": item.source,
        "version": item.version,
        "publisher": item.publisher,
        "judged": item.judged,
    }


def _history_row(device_id: str, report_id: str, reported_at: datetime, change: Change) -> dict[str, Any]:
    previous = change.previous
    return {
        "device_id": device_id,
        "report_id": report_id,
        "reported_at": reported_at,
        "change": change.kind,
        **_columns(change.item),
        "previous_version": previous.version if previous else None,
        "previous_publisher": previous.publisher if previous else None,
    }


def _batches(rows: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]
