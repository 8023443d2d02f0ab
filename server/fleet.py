"""What the server does with what devices send: enrolment, reports, heartbeats.

Each function runs inside one transaction given by the caller, together with
the request-id record, so a crash at any point leaves all of it or none of it.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Generic, TypeVar

from sqlalchemy import ColumnElement, Connection, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from agent.protocol import load_public_key
from server.api.schemas import (
    CommandOut,
    EnrolIn,
    HeartbeatIn,
    HeartbeatOut,
    IdentityIn,
    PoliciesOut,
    PolicyOut,
    ReportIn,
    ReportOut,
    RequirementsOut,
    SignOffIn,
    SignOffOut,
)
from server.auth import KnownDevice, RequestRefused, token_hash, utc
from server.db.models import (
    AuditEntry,
    Device,
    DeviceCommand,
    DeviceStatus,
    DeviceUser,
    EnrolmentToken,
    Policy,
    Report,
    RequirementsDocument,
    SignOffRecord,
)
from server.db.statements import insert_if_new

# The hot paths (every report and heartbeat) use Core statements on these tables, not ORM sessions.
DEVICES: Table = Device.__table__  # type: ignore[assignment]
DEVICE_STATUS: Table = DeviceStatus.__table__  # type: ignore[assignment]
REPORTS: Table = Report.__table__  # type: ignore[assignment]
REQUIREMENTS: Table = RequirementsDocument.__table__  # type: ignore[assignment]
COMMANDS: Table = DeviceCommand.__table__  # type: ignore[assignment]
AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]
POLICIES: Table = Policy.__table__  # type: ignore[assignment]
SIGNOFFS: Table = SignOffRecord.__table__  # type: ignore[assignment]
DEVICE_USERS: Table = DeviceUser.__table__  # type: ignore[assignment]

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
    for user in report.users:
        note_user(connection, device.id, user, now)
    if report.audience:
        connection.execute(update(DEVICES).where(DEVICES.c.id == device.id).values(audience=report.audience))
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


def note_user(connection: Connection, device_id: str, user: str, now: datetime) -> None:
    if not insert_if_new(
        connection, DEVICE_USERS, {"device_id": device_id, "user": user, "last_seen_at": now}
    ):
        connection.execute(
            update(DEVICE_USERS)
            .where(DEVICE_USERS.c.device_id == device_id, DEVICE_USERS.c.user == user)
            .values(last_seen_at=now)
        )


def store_signoff(connection: Connection, device: KnownDevice, signoff: SignOffIn) -> SignOffOut:
    """Kept once per record id: a sign-off made offline and sent twice is one decision."""
    now = now_utc()
    new = insert_if_new(
        connection,
        SIGNOFFS,
        {
            "record_id": signoff.record_id,
            "device_id": device.id,
            "user": signoff.user,
            "full_name": signoff.full_name,
            "policy_id": signoff.policy_id,
            "policy_version": signoff.policy_version,
            "decision": signoff.decision,
            "decided_at": utc(signoff.decided_at),
            "received_at": now,
        },
    )
    if new:
        note_user(connection, device.id, signoff.user, now)
    return SignOffOut(record_id=signoff.record_id, stored=new, duplicate=not new)


def note_dropped(connection: Connection, device_id: str, dropped: dict[str, int]) -> None:
    """A laptop whose outbox overflowed says what it had to drop; IT sees it in the audit log."""
    connection.execute(
        insert(AUDIT).values(
            at=now_utc(), actor=f"device:{device_id}", action="device.outbox_dropped", detail=dict(dropped)
        )
    )


T = TypeVar("T")


class GroupCache(Generic[T]):
    """Something every heartbeat asks for per group (requirements, policies), cached for a few seconds.

    Publishing reaches devices at most `seconds` later; in exchange a heartbeat costs no query for it.
    """

    def __init__(self, seconds: float, load: Callable[[Connection, str], T | None]) -> None:
        self.seconds = seconds
        self.load = load
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, T | None]] = {}

    def get(self, connection: Connection, group: str) -> T | None:
        with self._lock:
            entry = self._cache.get(group)
        if entry and time.monotonic() - entry[0] < self.seconds:
            return entry[1]
        found = self.load(connection, group)
        with self._lock:
            self._cache[group] = (time.monotonic(), found)
        return found


def load_requirements(connection: Connection, group: str) -> RequirementsOut | None:
    """The group's own requirements, else the district-wide ones (group "")."""
    docs = {
        row.group_name: row
        for row in connection.execute(
            select(REQUIREMENTS.c.group_name, REQUIREMENTS.c.etag, REQUIREMENTS.c.content).where(
                REQUIREMENTS.c.group_name.in_([group, ""])
            )
        )
    }
    doc = docs.get(group) or docs.get("")
    return RequirementsOut(etag=doc.etag, content=doc.content) if doc else None


def load_policies(connection: Connection, group: str) -> PoliciesOut | None:
    """Per audience, the group's own policy, else the district-wide one; the ETag covers all of them."""
    rows = connection.execute(
        select(POLICIES).where(POLICIES.c.group_name.in_([group, ""])).order_by(POLICIES.c.group_name)
    ).all()
    chosen: dict[str, PolicyOut] = {}
    for row in rows:  # "" sorts first, so a group's own policy replaces the district-wide one
        chosen[row.audience] = PolicyOut(
            audience=row.audience, policy_id=row.policy_id, version=row.version, content=row.content
        )
    if not chosen:
        return None
    documents = [chosen[audience] for audience in sorted(chosen)]
    etag = hashlib.sha256("".join(f"{d.audience}:{d.version};" for d in documents).encode()).hexdigest()
    return PoliciesOut(etag=etag, documents=documents)


RequirementsCache = GroupCache[RequirementsOut]
PoliciesCache = GroupCache[PoliciesOut]


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
    connection: Connection,
    device: KnownDevice,
    heartbeat: HeartbeatIn,
    requirements: RequirementsCache,
    policies: PoliciesCache,
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
    policy_set = policies.get(connection, device.group_name)
    return HeartbeatOut(
        server_time=now,
        requirements=doc if doc and doc.etag != heartbeat.requirements_etag else None,
        policies=policy_set if policy_set and policy_set.etag != heartbeat.policies_etag else None,
        commands=commands,
    )
