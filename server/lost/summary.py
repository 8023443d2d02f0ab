"""What the people told about a lost laptop need to know, read from the database: the device (serial,
asset tag, make and model, school, its user, when it was last seen), the network it was last seen
from, and the user's report. Notifications freeze this at the moment of the event."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from server.auth import utc
from server.db.lost_models import (
    DISTRICT_ACCESS_POINTS,
    DISTRICT_RANGES,
    LOST_CASES,
    LOST_EVIDENCE,
    LOST_REPORTS,
)
from server.db.tables import DEVICE_USERS, DEVICES
from server.lost.networks import AccessPoint, DistrictRange, Sighting, where_seen


def aware(moment: datetime | None) -> datetime | None:
    """A stored time with its zone (SQLite returns UTC times without one)."""
    return None if moment is None else utc(moment)


def iso(moment: datetime | None) -> str | None:
    stamped = aware(moment)
    return stamped.isoformat() if stamped else None


def district_networks(connection: Connection) -> tuple[list[DistrictRange], list[AccessPoint]]:
    ranges = [
        DistrictRange(ipaddress.ip_network(row.network), row.building)
        for row in connection.execute(select(DISTRICT_RANGES).order_by(DISTRICT_RANGES.c.id))
    ]
    points = [
        AccessPoint(row.bssid, row.building, row.room)
        for row in connection.execute(select(DISTRICT_ACCESS_POINTS).order_by(DISTRICT_ACCESS_POINTS.c.bssid))
    ]
    return ranges, points


def sighting_of(row: Any, ranges: list[DistrictRange], points: list[AccessPoint]) -> Sighting | None:
    """Where one evidence row puts the laptop, by the district's networks."""
    return where_seen(row.public_address, [str(w.get("bssid", "")) for w in row.wifi or []], ranges, points)


def assigned_user(connection: Connection, device_id: str) -> str | None:
    """The account seen on the laptop most recently: the person it is issued to, in practice."""
    found = connection.execute(
        select(DEVICE_USERS.c.user)
        .where(DEVICE_USERS.c.device_id == device_id)
        .order_by(DEVICE_USERS.c.last_seen_at.desc())
        .limit(1)
    ).scalar()
    return None if found is None else str(found)


def last_network(connection: Connection, case_id: int) -> dict[str, Any] | None:
    """The newest evidence of the case: the address the server saw, the Wi-Fi networks, and where
    the district's own networks put it. None before any evidence arrived."""
    row = connection.execute(
        select(LOST_EVIDENCE)
        .where(LOST_EVIDENCE.c.case_id == case_id)
        .order_by(LOST_EVIDENCE.c.collected_at.desc(), LOST_EVIDENCE.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    ranges, points = district_networks(connection)
    seen = sighting_of(row, ranges, points)
    return {
        "collected_at": iso(row.collected_at),
        "public_address": row.public_address,
        "gateway": row.gateway,
        "wifi": [str(w.get("ssid", "")) for w in (row.wifi or [])][:5],
        "seen_near": seen.words if seen else None,
    }


def device_facts(connection: Connection, device_id: str) -> dict[str, Any]:
    row = connection.execute(select(DEVICES).where(DEVICES.c.id == device_id)).one()
    return {
        "device_id": row.id,
        "serial": row.serial,
        "asset_tag": row.asset_tag,
        "manufacturer": row.manufacturer,
        "model": row.model,
        "hostname": row.hostname,
        "school": row.group_name,
        "assigned_user": assigned_user(connection, device_id),
        "last_seen_at": iso(row.last_seen_at),
    }


def first_report(connection: Connection, case_id: int) -> dict[str, Any] | None:
    row = connection.execute(
        select(LOST_REPORTS).where(LOST_REPORTS.c.case_id == case_id).order_by(LOST_REPORTS.c.id).limit(1)
    ).first()
    if row is None:
        return None
    return {
        "reporter": row.reporter,
        "reporter_name": row.reporter_name,
        "contact": row.contact,
        "kind": row.kind,
        "last_seen_at": iso(row.last_seen_at),
        "last_seen_where": row.last_seen_where,
        "what_happened": row.what_happened,
        "police_report": row.police_report,
        "made_at": iso(row.made_at),
    }


def case_facts(connection: Connection, case_id: int) -> dict[str, Any]:
    """Everything a notification about the case carries, as plain JSON."""
    case = connection.execute(select(LOST_CASES).where(LOST_CASES.c.id == case_id)).one()
    return {
        "case_id": str(case.id),
        "kind": case.kind,
        "status": case.status,
        "opened_at": iso(case.opened_at),
        "device": device_facts(connection, case.device_id),
        "last_network": last_network(connection, case.id),
        "report": first_report(connection, case.id),
    }
