"""A device record as a reader limited to some schools may see it.

The record itself is in their school (the page checked), but what is said about it can name another
laptop: an identity collision, an audit entry about a re-key that the other record made. A technician
or school viewer is told such a device exists ("a device in another school"), never its id, and
entries about the other device are left out.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, select

from server.console.roles import Scope
from server.db.tables import DEVICES
from server.fleet.device_record import DeviceRecord, audit_moment

HIDDEN = "a device in another school"


def _visible(connection: Connection, scope: Scope, ids: set[str]) -> set[str]:
    if not ids:
        return set()
    query = select(DEVICES.c.id).where(DEVICES.c.id.in_(sorted(ids)), scope.where(DEVICES.c.group_name))
    return set(connection.execute(query).scalars())


def _named_devices(entry: dict[str, Any]) -> set[str]:
    found = entry.get("detail")
    detail: dict[str, Any] = found if isinstance(found, dict) else {}
    return {str(value) for key in ("device", "other") if (value := detail.get(key))}


def narrowed(connection: Connection, scope: Scope, record: DeviceRecord) -> DeviceRecord:
    if scope.district_wide:
        return record
    named = {record.identity_collision} if record.identity_collision else set()
    for entry in record.audit:
        named |= _named_devices(entry)
    visible = _visible(connection, scope, named) | {record.id}
    kept: list[dict[str, Any]] = []
    for entry in record.audit:
        detail = dict(entry["detail"]) if isinstance(entry.get("detail"), dict) else {}
        if str(detail.get("device", record.id)) not in visible:
            continue  # about the other laptop, in a school this reader does not see
        if "other" in detail and str(detail["other"]) not in visible:
            detail["other"] = HIDDEN
        kept.append(entry | {"detail": detail})
    dropped = len(record.audit) - len(kept)
    audit_moments = [audit_moment(entry) for entry in kept]
    history = [m for m in record.history if m.kind != "audit"] + audit_moments
    history.sort(key=lambda moment: moment.at, reverse=True)
    collision = record.identity_collision
    return replace(
        record,
        audit=kept,
        history=history if dropped else record.history,
        identity_collision=HIDDEN if collision and collision not in visible else collision,
    )
