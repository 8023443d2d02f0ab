"""A report's writes on PostgreSQL in one statement: the stored report, and, only if it was new, the
device's status, its row (last seen, identity), its users and its inventory's report.

Every statement costs the server its own round trip and most of a tenth of a millisecond of
driver work, and a report that changes nothing but its time (what a laptop sends all day) made
five of them after its reads. PostgreSQL runs data-modifying WITH queries together, on one
snapshot, each to completion: each write here is gated on the report's own insert (`FROM stored`),
so a report seen before writes nothing, as with the separate statements. Each keeps the meaning
of its separate form in `server.fleet.ingest` (which SQLite, lacking writes in WITH, still runs):
the status only moves forward in time, empty identity facts are filled in but never overwritten,
and the inventory only moves to a newer report (decided by the caller, which read the inventory
with the device row locked).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import String, bindparam, func, select, true
from sqlalchemy.dialects.postgresql import ARRAY, insert

from server.db.driver_statements import DriverStatement
from server.db.tables import DEVICE_INVENTORY, DEVICE_STATUS, DEVICE_USERS, DEVICES, REPORTS

_REPORT_COLUMNS = ("report_id", "device_id", "reported_at", "received_at", "overall", "body")
_STATUS_COLUMNS = ("device_id", "report_id", "reported_at", "received_at", "overall", "results", "checks")
# The facts enrolment matches records by: filling one in must not make this record another's twin.
IDENTIFYING = ("serial", "hardware_uuid", "machine_id")


# Every parameter's name is prefixed: a parameter named as a column of a table an UPDATE in WITH
# writes would be added to that UPDATE's SET by SQLAlchemy (as for a top-level UPDATE).
PREFIX = "w_"


def parameters(values: dict[str, Any]) -> dict[str, Any]:
    """The statement's parameters from their plain names (`stored_report`'s docstring)."""
    return {PREFIX + name: value for name, value in values.items()}


def _bound(table: Any, name: str, key: str | None = None) -> Any:
    return bindparam(PREFIX + (key or name), type_=table.c[name].type)


@lru_cache(maxsize=4)
def stored_report(move_inventory: bool) -> DriverStatement:
    """The one statement. Its row, if the report was new: the device's id and identifying facts as
    they stood (`device_id` None: the device is gone). No row: the report was stored before.

    Parameters: the report's columns; `results`, `checks` (the status); `now`, `agent_version`,
    `hostname`, `os_version`, `macs`, `audience`, `manufacturer`, `model` (the device row);
    `users`; and with `move_inventory`, the inventory's `inventory_digest`, `inventory_items`,
    `inventory_listed_digest`, `inventory_listed_length`. All are passed through `parameters`."""
    stored = (
        insert(REPORTS)
        .values({name: _bound(REPORTS, name) for name in _REPORT_COLUMNS})
        .on_conflict_do_nothing()
        .returning(REPORTS.c.report_id)
        .cte("stored")
    )
    status_insert = insert(DEVICE_STATUS).from_select(
        list(_STATUS_COLUMNS),
        select(*(_bound(DEVICE_STATUS, name) for name in _STATUS_COLUMNS)).select_from(stored),
    )
    status = status_insert.on_conflict_do_update(
        index_elements=[DEVICE_STATUS.c.device_id],
        set_={name: status_insert.excluded[name] for name in _STATUS_COLUMNS if name != "device_id"},
        where=DEVICE_STATUS.c.reported_at <= status_insert.excluded.reported_at,
    ).cte("status")
    seen = (
        DEVICES.update()
        .where(DEVICES.c.id == _bound(DEVICES, "id", "device_id"))
        .where(select(stored.c.report_id).exists())
        .values(
            last_seen_at=_bound(DEVICES, "last_seen_at", "now"),
            agent_version=_bound(DEVICES, "agent_version"),
            hostname=_bound(DEVICES, "hostname"),
            os_version=_bound(DEVICES, "os_version"),
            macs=_bound(DEVICES, "macs"),
            audience=func.coalesce(_bound(DEVICES, "audience"), DEVICES.c.audience),
            manufacturer=func.coalesce(DEVICES.c.manufacturer, _bound(DEVICES, "manufacturer")),
            model=func.coalesce(DEVICES.c.model, _bound(DEVICES, "model")),
        )
        .returning(DEVICES.c.id, *(DEVICES.c[name] for name in IDENTIFYING), DEVICES.c.identity_collision)
        .cte("seen")
    )
    # DISTINCT: one upsert cannot touch a row twice, and a list may name a user twice.
    named = (
        select(func.unnest(bindparam(PREFIX + "users", type_=ARRAY(String))).label("user"))
        .distinct()
        .subquery()
    )
    users_insert = insert(DEVICE_USERS).from_select(
        ["device_id", "user", "last_seen_at"],
        select(
            _bound(DEVICE_USERS, "device_id"), named.c.user, _bound(DEVICE_USERS, "last_seen_at", "now")
        ).select_from(stored.join(named, true())),
    )
    users = users_insert.on_conflict_do_update(
        index_elements=[DEVICE_USERS.c.device_id, DEVICE_USERS.c.user],
        set_={"last_seen_at": users_insert.excluded.last_seen_at},
    ).cte("users")
    outcome = select(
        seen.c.id.label("device_id"),
        *(seen.c[name] for name in IDENTIFYING),
        seen.c.identity_collision,
    ).select_from(stored.outerjoin(seen, true()))
    outcome = outcome.add_cte(status, users)
    if move_inventory:
        moved = (
            DEVICE_INVENTORY.update()
            .where(DEVICE_INVENTORY.c.device_id == _bound(DEVICE_INVENTORY, "device_id"))
            .where(select(stored.c.report_id).exists())
            .values(
                report_id=_bound(DEVICE_INVENTORY, "report_id"),
                reported_at=_bound(DEVICE_INVENTORY, "reported_at"),
                digest=_bound(DEVICE_INVENTORY, "digest", "inventory_digest"),
                items=_bound(DEVICE_INVENTORY, "items", "inventory_items"),
                listed_digest=_bound(DEVICE_INVENTORY, "listed_digest", "inventory_listed_digest"),
                listed_length=_bound(DEVICE_INVENTORY, "listed_length", "inventory_listed_length"),
            )
            .cte("moved")
        )
        outcome = outcome.add_cte(moved)
    return DriverStatement(outcome)
