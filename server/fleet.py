"""What the server does with what devices send: enrolment, reports, heartbeats.

Each function runs inside one transaction given by the caller, together with
the request-id record, so a crash at any point leaves all of it or none of it.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import ColumnElement, Connection, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from agent.protocol import load_public_key
from server.api.schemas import (
    CommandOut,
    EnrolIn,
    HeartbeatIn,
    HeartbeatOut,
    IdentityIn,
    ReportIn,
    ReportOut,
    RequirementsOut,
)
from server.auth import KnownDevice, RequestRefused, token_hash, utc
from server.db.models import (
    AuditEntry,
    Device,
    DeviceCommand,
    DeviceStatus,
    EnrolmentToken,
    Report,
    RequirementsDocument,
)
from server.db.statements import insert_if_new

# The hot paths (every report and heartbeat) use Core statements on these tables, not ORM sessions.
DEVICES: Table = Device.__table__  # type: ignore[assignment]
DEVICE_STATUS: Table = DeviceStatus.__table__  # type: ignore[assignment]
REPORTS: Table = Report.__table__  # type: ignore[assignment]
REQUIREMENTS: Table = RequirementsDocument.__table__  # type: ignore[assignment]
COMMANDS: Table = DeviceCommand.__table__  # type: ignore[assignment]
AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]

SEVERITY = {"pass": 0, "unknown": 1, "error": 1, "fail": 2}


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def overall_status(statuses: list[str]) -> str:
    """The device's colour: fail if anything fails, unknown if anything is unconfirmed, else pass."""
    if not statuses:
        return "unknown"
    worst = max(statuses, key=lambda s: SEVERITY.get(s, 1))
    return "unknown" if worst == "error" else worst


@dataclass(frozen=True)
class Enrolled:
    device_id: str
    group: str
    replaced_key: bool


def enrol(session: Session, request: EnrolIn) -> Enrolled:
    try:
        load_public_key(request.public_key)
    except ValueError as exc:
        raise RequestRefused(400, str(exc)) from None
    token = session.scalars(
        select(EnrolmentToken).where(EnrolmentToken.token_hash == token_hash(request.token))
    ).first()
    now = now_utc()
    if token is None:
        raise RequestRefused(403, "enrolment token not recognised: ask IT for a current token")
    if token.revoked_at is not None:
        raise RequestRefused(403, "enrolment token was revoked: ask IT for a current token")
    if token.expires_at is not None and utc(token.expires_at) <= now:
        raise RequestRefused(
            403, f"enrolment token expired on {utc(token.expires_at):%Y-%m-%d}: ask IT for a new one"
        )
    identity = request.identity
    existing = None
    match: tuple[ColumnElement[bool], ...]
    if identity.serial or identity.hardware_uuid:
        # The same hardware re-installed maps to the same record: both facts must agree where known.
        match = (Device.serial == identity.serial, Device.hardware_uuid == identity.hardware_uuid)
    elif identity.machine_id:
        # No firmware identity (virtual machines, unprivileged runs): the OS install's id is all there is.
        match = (
            Device.serial.is_(None),
            Device.hardware_uuid.is_(None),
            Device.machine_id == identity.machine_id,
        )
    else:
        match = ()
    if match:
        existing = session.scalars(select(Device).where(*match).order_by(Device.enrolled_at)).first()
    replaced = existing is not None
    device = existing or Device(id=uuid.uuid4().hex, enrolled_at=now, commands_pending=False)
    device.group_name = token.group_name
    device.serial = identity.serial
    device.hardware_uuid = identity.hardware_uuid
    device.hostname = identity.hostname
    device.manufacturer = identity.manufacturer
    device.model = identity.model
    device.os = identity.os
    device.os_version = identity.os_version
    device.machine_id = identity.machine_id
    device.macs = list(identity.macs)
    device.identity_unreadable = dict(identity.unreadable)
    device.public_key = request.public_key
    device.agent_version = request.agent_version
    device.last_seen_at = now
    if replaced:
        device.key_replaced_at = now
    session.add(device)
    session.add(
        AuditEntry(
            at=now,
            actor=f"device:{device.id}",
            action="device.re-enrolled" if replaced else "device.enrolled",
            detail={"group": token.group_name, "hostname": identity.hostname, "serial": identity.serial},
        )
    )
    return Enrolled(device.id, token.group_name, replaced)


def store_report(connection: Connection, device: KnownDevice, report: ReportIn) -> ReportOut:
    """Stored once per report id; the current status only moves forward in time."""
    now = now_utc()
    reported_at = utc(report.reported_at)
    overall = overall_status([r.status for r in report.results])
    new = insert_if_new(
        connection,
        REPORTS,
        {
            "report_id": report.report_id,
            "device_id": device.id,
            "reported_at": reported_at,
            "received_at": now,
            "overall": overall,
            "body": report.model_dump(mode="json"),
        },
    )
    if not new:
        return ReportOut(report_id=report.report_id, stored=False, duplicate=True)
    status = {
        "report_id": report.report_id,
        "reported_at": reported_at,
        "received_at": now,
        "overall": overall,
        "results": [r.model_dump(mode="json") for r in report.results],
    }
    if not insert_if_new(connection, DEVICE_STATUS, {"device_id": device.id, **status}):
        # A report delayed by an outage must not overwrite a newer one that arrived first.
        connection.execute(
            update(DEVICE_STATUS)
            .where(DEVICE_STATUS.c.device_id == device.id, DEVICE_STATUS.c.reported_at <= reported_at)
            .values(**status)
        )
    identity = report.identity
    connection.execute(
        update(DEVICES)
        .where(DEVICES.c.id == device.id)
        .values(
            last_seen_at=now,
            agent_version=report.agent_version,
            hostname=identity.hostname,
            os_version=identity.os_version,
            macs=list(identity.macs),
        )
    )
    fill_in_identity(connection, device.id, identity)
    if report.dropped:
        note_dropped(connection, device.id, report.dropped)
    return ReportOut(report_id=report.report_id, stored=True, duplicate=False)


FILLABLE = ("serial", "hardware_uuid", "manufacturer", "model", "machine_id")


def fill_in_identity(connection: Connection, device_id: str, identity: IdentityIn) -> None:
    """Facts an unprivileged enrolment could not read are filled in once the service (root/SYSTEM) reports.

    Only empty fields are filled: a serial that changes under a known device is not silently rewritten.
    """
    for name in FILLABLE:
        value = getattr(identity, name)
        if value:
            connection.execute(
                update(DEVICES)
                .where(DEVICES.c.id == device_id, DEVICES.c[name].is_(None))
                .values({name: value})
            )


def note_dropped(connection: Connection, device_id: str, dropped: dict[str, int]) -> None:
    """A laptop whose outbox overflowed says what it had to drop; IT sees it in the audit log."""
    connection.execute(
        insert(AUDIT).values(
            at=now_utc(), actor=f"device:{device_id}", action="device.outbox_dropped", detail=dict(dropped)
        )
    )


class RequirementsCache:
    """The requirements document per group, cached briefly: every heartbeat asks for its ETag."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, RequirementsOut | None]] = {}

    def get(self, connection: Connection, group: str) -> RequirementsOut | None:
        with self._lock:
            entry = self._cache.get(group)
        if entry and time.monotonic() - entry[0] < self.seconds:
            return entry[1]
        docs = {
            row.group_name: row
            for row in connection.execute(
                select(REQUIREMENTS.c.group_name, REQUIREMENTS.c.etag, REQUIREMENTS.c.content).where(
                    REQUIREMENTS.c.group_name.in_([group, ""])
                )
            )
        }
        doc = docs.get(group) or docs.get("")
        found = RequirementsOut(etag=doc.etag, content=doc.content) if doc else None
        with self._lock:
            self._cache[group] = (time.monotonic(), found)
        return found


def requirements_etag(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


SEEN_NOW = (
    update(DEVICES)
    .where(DEVICES.c.id == bindparam("device_id"))
    .values(last_seen_at=bindparam("now"), agent_version=bindparam("agent_version"))
    # Read in the same statement, not from the key cache: a command queued a second ago must go out now.
    .returning(DEVICES.c.commands_pending)
)


def record_heartbeat(
    connection: Connection, device: KnownDevice, heartbeat: HeartbeatIn, requirements: RequirementsCache
) -> HeartbeatOut:
    now = now_utc()
    pending = connection.execute(
        SEEN_NOW, {"device_id": device.id, "now": now, "agent_version": heartbeat.agent_version}
    ).scalar()
    if heartbeat.dropped:
        note_dropped(connection, device.id, heartbeat.dropped)
    doc = requirements.get(connection, device.group_name)
    commands: list[CommandOut] = []
    if pending:
        queued = connection.execute(
            select(COMMANDS.c.id, COMMANDS.c.command).where(
                COMMANDS.c.device_id == device.id, COMMANDS.c.delivered_at.is_(None)
            )
        ).all()
        commands = [CommandOut(id=row.id, command=row.command) for row in queued]
        if commands:
            connection.execute(
                update(COMMANDS).where(COMMANDS.c.id.in_([c.id for c in commands])).values(delivered_at=now)
            )
        connection.execute(update(DEVICES).where(DEVICES.c.id == device.id).values(commands_pending=False))
    return HeartbeatOut(
        server_time=now,
        requirements=doc if doc and doc.etag != heartbeat.requirements_etag else None,
        commands=commands,
    )
