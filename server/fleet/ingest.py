"""What the server does with what devices send: enrolment, reports, heartbeats.

Each function runs inside one transaction given by the caller, together with
the request-id record, so a crash at any point leaves all of it or none of it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import ColumnElement, Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from contract.wire import load_public_key
from server.api.schemas import (
    CommandOut,
    EnrolIn,
    HeartbeatIn,
    HeartbeatOut,
    IdentityIn,
    ReportIn,
    ReportOut,
)
from server.auth import KnownDevice, token_hash, utc
from server.db.models import (
    AuditEntry,
    Device,
    EnrolmentToken,
)
from server.db.statements import insert_if_new
from server.db.tables import (
    AUDIT,
    COMMANDS,
    DEVICE_STATUS,
    DEVICE_USERS,
    DEVICES,
    REPORTS,
)
from server.errors import RequestRefused
from server.fleet.published import PoliciesCache, RequirementsCache

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
    if report.local_problems:
        note_local_problems(connection, device.id, report.local_problems)
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


def note_dropped(connection: Connection, device_id: str, dropped: dict[str, int]) -> None:
    """A laptop whose outbox overflowed says what it had to drop; IT sees it in the audit log."""
    connection.execute(
        insert(AUDIT).values(
            at=now_utc(), actor=f"device:{device_id}", action="device.outbox_dropped", detail=dict(dropped)
        )
    )


def note_local_problems(connection: Connection, device_id: str, problems: list[str]) -> None:
    """A laptop kept running on bad local state (a damaged outbox set aside, a broken local file): IT must
    know, since what the outbox held may be lost and the file needs fixing."""
    connection.execute(
        insert(AUDIT).values(
            at=now_utc(),
            actor=f"device:{device_id}",
            action="device.local_problem",
            detail={"problems": list(problems)},
        )
    )


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
    if heartbeat.local_problems:
        note_local_problems(connection, device.id, heartbeat.local_problems)
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
